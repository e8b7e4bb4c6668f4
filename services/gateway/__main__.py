import uvicorn

from services.gateway.app import create_app
from services.runtime.settings import Settings

settings = Settings()
uvicorn.run(create_app(settings), host=settings.host, port=settings.gateway_port, log_level="info")
