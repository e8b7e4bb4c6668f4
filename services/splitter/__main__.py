from services.runtime.loop import run_handler
from services.splitter.handler import Splitter

run_handler(Splitter)
