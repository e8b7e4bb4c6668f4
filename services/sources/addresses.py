"""Which addresses a source may reach. A tenant's source is a request made from inside the
deployment: unless private networks are allowed, a URL whose host resolves to a loopback, private,
link-local (cloud metadata) or otherwise non-public address is refused, so a source cannot read
the deployment's own servers. Checked when a source is defined and before each request."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import httpx

from services.sources.kinds import SourceUnavailable


class BlockedAddress(SourceUnavailable):
    """The URL's host is not a public address, and private networks are not allowed."""


def check_public(url: str) -> None:
    host = urlsplit(url).hostname
    if not host:
        raise BlockedAddress(f"{url}: no host")
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as exc:
        raise BlockedAddress(f"{host}: cannot be resolved ({exc})") from None
    for address in addresses:
        if not ipaddress.ip_address(address.split("%", 1)[0]).is_global:
            raise BlockedAddress(f"{host} is {address}, not a public address: sources may not reach private "
                                 "networks here (INDEXFLOW_SOURCES_PRIVATE_NETWORKS)")


def http_client(timeout: float, user_agent: str, private_networks: bool) -> httpx.Client:
    """The process's client for the kinds that speak HTTP; each request's host checked first."""
    hooks = {} if private_networks else {"request": [lambda request: check_public(str(request.url))]}
    return httpx.Client(timeout=timeout, follow_redirects=True, headers={"User-Agent": user_agent},
                        event_hooks=hooks)
