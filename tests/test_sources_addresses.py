"""A source may not reach the deployment's own network unless private networks are allowed: hosts
that are loopback, private or link-local are refused, by name or number, before any request."""

from __future__ import annotations

import pytest

from services.sources.addresses import BlockedAddress, check_public, http_client
from services.sources.settings import SourcesSettings
from tests.support.website import Website, serve


@pytest.mark.parametrize("url", ["http://127.0.0.1:16379/", "http://localhost/", "http://[::1]/", "http://10.1.2.3/",
                                 "http://192.168.0.7/x", "http://169.254.169.254/latest/meta-data/", "http://0.0.0.0/"])
def test_private_addresses_are_refused(url: str):
    with pytest.raises(BlockedAddress, match="not a public address"):
        check_public(url)


def test_a_public_address_passes():
    check_public("https://93.184.216.34/docs")


def test_the_client_refuses_a_private_host_before_connecting():
    with serve(Website()) as site:
        site.html("/", "Home", "Inside.")
        with http_client(5, "test", private_networks=False) as client, pytest.raises(BlockedAddress):
            client.get(site.url + "/")
        assert not site.requests
        with http_client(5, "test", private_networks=True) as client:
            assert client.get(site.url + "/").status_code == 200


def test_private_networks_are_allowed_where_the_gateway_is_open_unless_said_otherwise(monkeypatch):
    assert SourcesSettings().allows_private_networks("open")
    assert not SourcesSettings().allows_private_networks("api_keys")
    monkeypatch.setenv("INDEXFLOW_SOURCES_PRIVATE_NETWORKS", "true")
    assert SourcesSettings().allows_private_networks("api_keys")
    monkeypatch.setenv("INDEXFLOW_SOURCES_PRIVATE_NETWORKS", "false")
    assert not SourcesSettings().allows_private_networks("open")
