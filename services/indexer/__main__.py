from services.indexer.handler import Indexer
from services.runtime.loop import run_handler

run_handler(Indexer)
