from services.extractor.handler import Extractor
from services.runtime.loop import run_handler

run_handler(Extractor)
