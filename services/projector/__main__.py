import sys

from services.projector.app import create_app
from services.runtime.settings import Settings

app = create_app(Settings())
# No web server: nothing of faust's listens on a port.
sys.argv = [sys.argv[0], "worker", "--without-web", "--loglevel", "info"]
app.main()
