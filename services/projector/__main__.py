from services.projector.handler import Projector
from services.runtime.loop import run_handler

run_handler(Projector)
