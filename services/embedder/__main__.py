from services.embedder.handler import Embedder
from services.runtime.loop import run_handler

run_handler(Embedder)
