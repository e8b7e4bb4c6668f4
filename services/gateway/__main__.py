import uvicorn

from services.gateway.app import create_app
from services.runtime.logs import configure_logging
from services.runtime.settings import Settings

settings = Settings()
configure_logging(settings, "gateway")
# log_config=None: uvicorn's own loggers (access lines included) go through the same handler.
# A bounded graceful shutdown: the dashboard's event streams never end by themselves.
uvicorn.run(create_app(settings), host=settings.host, port=settings.gateway_port, log_config=None,
            timeout_graceful_shutdown=5)
