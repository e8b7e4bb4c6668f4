"""A loopback HTTP proxy in front of the real Elasticsearch API server, whose answers a test can
replace: ``rule`` sees each request (method, path) and returns an answer of its own (status, JSON
body) or None to pass the request through. A rule may also block, to hold a request back."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import orjson

Answer = tuple[int, dict[str, Any]]
Rule = Callable[[str, str], Answer | None]

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class ElasticsearchProxy:
    def __init__(self, upstream_url: str):
        upstream = urlsplit(upstream_url)
        self.rule: Rule = lambda method, path: None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the client's pool expects

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = proxy.rule(self.command, self.path)
                if answer is not None:
                    status, payload = answer
                    self._reply(status, orjson.dumps(payload), {"Content-Type": "application/json",
                                                                "X-Elastic-Product": "Elasticsearch"})
                    return
                connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=300)
                try:
                    connection.request(self.command, self.path, body=body or None, headers=dict(self.headers))
                    response = connection.getresponse()
                    headers = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
                    self._reply(response.status, response.read(), headers)
                finally:
                    connection.close()

            def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ElasticsearchProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class Refusing:
    """A rule answering ``answer`` to the first ``times`` requests that ``matches``, passing the rest."""

    def __init__(self, times: int, answer: Answer, matches: Callable[[str, str], bool] = lambda method, path: True):
        self.times = times
        self.answer = answer
        self.matches = matches
        self.refused = 0
        self._lock = threading.Lock()

    def __call__(self, method: str, path: str) -> Answer | None:
        with self._lock:
            if self.refused >= self.times or not self.matches(method, path):
                return None
            self.refused += 1
            return self.answer
