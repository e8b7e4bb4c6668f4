"""The Elasticsearch client, with the deployment's credentials and CA."""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from services.runtime.metrics import SERVER_WAIT
from services.runtime.settings import Settings

_WAITED = SERVER_WAIT.labels("elasticsearch")


class _TimedElasticsearch(Elasticsearch):
    """Every API call (``options()`` copies keep the class) counts as time waiting on the server."""

    def perform_request(self, *args: Any, **kwargs: Any) -> Any:
        with _WAITED.time():
            return super().perform_request(*args, **kwargs)


def elasticsearch_client(settings: Settings, request_timeout: float = 30) -> Elasticsearch:
    auth: dict = {}
    if settings.elasticsearch_api_key:
        auth["api_key"] = settings.elasticsearch_api_key.get_secret_value()
    elif settings.elasticsearch_username:
        auth["basic_auth"] = (settings.elasticsearch_username, settings.elasticsearch_password.get_secret_value())
    if settings.elasticsearch_ca_certs:
        auth["ca_certs"] = str(settings.elasticsearch_ca_certs)
    return _TimedElasticsearch(settings.elasticsearch_url, request_timeout=request_timeout, **auth)
