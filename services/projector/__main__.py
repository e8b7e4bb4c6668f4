import sys

from services.projector.app import create_app
from services.runtime.settings import Settings

app = create_app(Settings())
sys.argv = [sys.argv[0], "worker", "--loglevel", "info"]
app.main()
