"""The production compose file, read as data: what it promises about durability holds."""

from __future__ import annotations

from pathlib import Path

import yaml

from services.runtime.settings import Settings

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[1] / "docker-compose.yml").read_text())


def _brokers() -> dict[str, dict]:
    return {name: s for name, s in COMPOSE["services"].items() if s.get("image", "").startswith("apache/kafka")}


def test_every_broker_keeps_its_log_in_its_volume():
    brokers = _brokers()
    assert len(brokers) == 3
    for name, broker in brokers.items():
        mounts = {v.split(":")[1] for v in broker["volumes"]}
        assert broker["environment"]["KAFKA_LOG_DIRS"] in mounts, f"{name} writes its log outside its volume"
    assert len({b["environment"]["KAFKA_NODE_ID"] for b in brokers.values()}) == 3


def test_services_get_durable_topics_on_that_cluster():
    environment = {k: str(v) for k, v in COMPOSE["x-indexflow-environment"].items()}
    settings = Settings(**{k.removeprefix("INDEXFLOW_").lower(): v for k, v in environment.items()})
    assert (settings.replication_factor, settings.min_insync_replicas) == (3, 2)
    assert settings.auth == "api_keys"
    assert settings.session_timeout_ms == 45_000
    hosts = {server.split(":")[0] for server in settings.kafka_bootstrap_servers.split(",")}
    assert hosts == set(_brokers())
    cluster_min_isr = {int(b["environment"]["KAFKA_MIN_INSYNC_REPLICAS"]) for b in _brokers().values()}
    assert cluster_min_isr == {settings.min_insync_replicas}
    assert "noeviction" in COMPOSE["services"]["redis"]["command"]
    assert settings.redis_url != settings.cache_redis_url


def test_kubernetes_configuration_names_only_real_settings(tmp_path):
    manifest = Path(__file__).resolve().parents[1] / "deploy/k8s/configuration.yaml"
    documents = list(yaml.safe_load_all(manifest.read_text()))
    secret = next(d for d in documents if d["kind"] == "Secret")["stringData"]
    config = next(d for d in documents if d["kind"] == "ConfigMap")["data"]
    environment = {**config, **secret}
    fields = {f"INDEXFLOW_{name.upper()}" for name in Settings.model_fields}
    assert set(environment) <= fields, "a misspelt variable would be ignored silently"
    assert not any(k.endswith(("PASSWORD", "API_KEY", "REDIS_URL")) for k in config), "secrets in the ConfigMap"
    ca = tmp_path / "ca.crt"
    ca.write_text("mounted at runtime")
    paths = {k: str(ca) for k, v in environment.items() if v.startswith("/etc/indexflow/")}
    settings = Settings(**{k.removeprefix("INDEXFLOW_").lower(): v for k, v in {**environment, **paths}.items()})
    assert settings.kafka_security_protocol == "SASL_SSL" and settings.min_insync_replicas == 2
    assert settings.auth == "api_keys"
