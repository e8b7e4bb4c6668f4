"""The Kubernetes manifests of the pipeline (``deploy/k8s/pipeline.yaml``), written from one
description of the services so that seven Deployments never drift apart:

    python -m deploy.k8s_manifests > deploy/k8s/pipeline.yaml

Each service is a Deployment of the one image, configured by the ``indexflow`` ConfigMap and
Secret (``deploy/k8s/configuration.yaml``). Every stage that consumes Kafka scales with KEDA on the
lag of its consumer groups: one ScaledObject per Deployment (KEDA allows one per target), with a
trigger per group, since each stage reads two lanes, each in a group of its own. The gateway
scales on CPU; the watchdog runs alone."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from schemas import Priority, Stage
from services.runtime.settings import Settings
from topics.catalog import STAGE_INPUTS

K8S = Path(__file__).resolve().parent / "k8s"
IMAGE = "indexflow:0.1.0"  # pushed to your registry: docker build -t <registry>/indexflow:0.1.0 .
METRICS_PORT = 9464
GATEWAY_PORT = 18080
LABEL = "app.kubernetes.io/name"
COMPONENT = "app.kubernetes.io/component"
# Records waiting per replica before KEDA adds one (a replica embeds tens of chunks a second).
LAG_THRESHOLD = {Stage.EXTRACTOR: 20, Stage.SPLITTER: 50, Stage.EMBEDDER: 20, Stage.INDEXER: 100,
                 Stage.PROJECTOR: 500}


@dataclass(frozen=True)
class Service:
    name: str
    cpu: str
    memory: str
    replicas: int = 1
    env: tuple[tuple[str, str], ...] = ()


SERVICES = (
    Service("gateway", cpu="1", memory="2Gi", replicas=2),
    # The extraction sandbox may take INDEXFLOW_EXTRACTOR_MEMORY_LIMIT_MB (2 GiB) beside the service.
    Service("extractor", cpu="1", memory="3Gi"),
    Service("splitter", cpu="500m", memory="512Mi"),
    Service("embedder", cpu="2", memory="3Gi", replicas=2, env=(("INDEXFLOW_EMBEDDING_THREADS", "2"),)),
    Service("indexer", cpu="500m", memory="512Mi"),
    Service("projector", cpu="250m", memory="256Mi"),
    # One is enough (its work is idempotent); Recreate keeps a second from overlapping a rollout.
    Service("watchdog", cpu="250m", memory="512Mi"),
    # Syncs sources; replicas share them through per-source leases.
    Service("sources", cpu="500m", memory="1Gi"),
)


def configuration() -> dict[str, str]:
    """The ConfigMap's settings (where the brokers are, the prefix, the partitions)."""
    documents = yaml.safe_load_all((K8S / "configuration.yaml").read_text())
    return next(d for d in documents if d["kind"] == "ConfigMap")["data"]


def _labels(service: str) -> dict[str, str]:
    return {LABEL: "indexflow", COMPONENT: service}


def deployment(service: Service) -> dict:
    gateway = service.name == "gateway"
    port = GATEWAY_PORT if gateway else METRICS_PORT
    # Alive means the process works, not that its dependencies answer: an Elasticsearch outage
    # must not restart every gateway (readiness takes it out of the Service instead).
    liveness = (
        {"tcpSocket": {"port": GATEWAY_PORT}}
        if gateway else {"exec": {"command": ["indexflow", "alive", service.name, "--within", "60"]}}
    )
    container = {
        "name": service.name,
        "image": IMAGE,
        "command": ["python", "-m", f"services.{service.name}"],
        "envFrom": [{"configMapRef": {"name": "indexflow"}}, {"secretRef": {"name": "indexflow"}}],
        "ports": [{"name": "http" if gateway else "metrics", "containerPort": port}],
        "livenessProbe": {**liveness, "initialDelaySeconds": 60, "periodSeconds": 15, "timeoutSeconds": 10,
                          "failureThreshold": 4},
        "resources": {"requests": {"cpu": service.cpu, "memory": service.memory},
                      "limits": {"memory": service.memory}},
        "volumeMounts": [{"name": "tls", "mountPath": "/etc/indexflow/tls", "readOnly": True}],
    }
    env = [{"name": name, "value": value} for name, value in service.env]
    if not gateway and service.name != "watchdog":
        # A static member of its consumer groups under the pod's name: a container restarted in its
        # pod gets its partitions back without a rebalance.
        env.append({"name": "INDEXFLOW_INSTANCE_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    if env:
        container["env"] = env
    if gateway:
        # Ready while what reads need answers (Redis, Elasticsearch), answered from cached checks:
        # a Kafka outage stops writes (each a 503), never search.
        container["readinessProbe"] = {"httpGet": {"path": "/readyz", "port": GATEWAY_PORT}, "periodSeconds": 5,
                                       "timeoutSeconds": 1}
    # Started only once the topics Job made every topic: a service first would have the broker
    # create them with its defaults (one partition, no compaction) if it allows auto-creation.
    wait_for_topics = {**_indexflow_container("wait-for-topics"), "command": ["indexflow", "topics", "check"]}
    spec = {
        "replicas": service.replicas,
        "selector": {"matchLabels": _labels(service.name)},
        "template": {
            "metadata": {
                "labels": _labels(service.name),
                "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(port),
                                "prometheus.io/path": "/metrics"},
            },
            "spec": {
                # SIGTERM: a stage finishes and commits its batch in hand, then leaves its group.
                "terminationGracePeriodSeconds": 60,
                "initContainers": [wait_for_topics],
                "containers": [container],
                "volumes": [{"name": "tls", "secret": {"secretName": "indexflow-tls"}}],
            },
        },
    }
    if service.name == "watchdog":
        spec["strategy"] = {"type": "Recreate"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"indexflow-{service.name}", "labels": _labels(service.name)}, "spec": spec}


def _indexflow_container(name: str) -> dict:
    return {
        "name": name,
        "image": IMAGE,
        "envFrom": [{"configMapRef": {"name": "indexflow"}}, {"secretRef": {"name": "indexflow"}}],
        "volumeMounts": [{"name": "tls", "mountPath": "/etc/indexflow/tls", "readOnly": True}],
    }


def topics_job() -> dict:
    """``indexflow topics apply`` once per install or upgrade (a Job's spec cannot change: delete the
    finished one before applying a new version); it exits 1 when a topic differs from its
    declaration, and is retried until the brokers answer."""
    container = {**_indexflow_container("topics"), "command": ["indexflow", "topics", "apply"],
                 "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "256Mi"}}}
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "indexflow-topics", "labels": _labels("topics")},
        "spec": {
            "backoffLimit": 20,
            "template": {
                "metadata": {"labels": _labels("topics")},
                "spec": {"restartPolicy": "OnFailure", "containers": [container],
                         "volumes": [{"name": "tls", "secret": {"secretName": "indexflow-tls"}}]},
            },
        },
    }


def gateway_service() -> dict:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "indexflow-gateway", "labels": _labels("gateway")},
        "spec": {"selector": _labels("gateway"),
                 "ports": [{"name": "http", "port": 80, "targetPort": GATEWAY_PORT}]},
    }


def gateway_autoscaler() -> dict:
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "indexflow-gateway", "labels": _labels("gateway")},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "indexflow-gateway"},
            "minReplicas": 2, "maxReplicas": 6,
            "metrics": [{"type": "Resource",
                         "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}],
        },
    }


def kafka_authentication() -> dict:
    """How KEDA reaches the brokers: the pipeline's SASL user and CA (Secrets indexflow,
    indexflow-keda and indexflow-tls)."""
    references = [("sasl", "indexflow-keda", "sasl"), ("tls", "indexflow-keda", "tls"),
                  ("username", "indexflow", "INDEXFLOW_KAFKA_SASL_USERNAME"),
                  ("password", "indexflow", "INDEXFLOW_KAFKA_SASL_PASSWORD"), ("ca", "indexflow-tls", "ca.crt")]
    return {
        "apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
        "metadata": {"name": "indexflow-kafka"},
        "spec": {"secretTargetRef": [{"parameter": p, "name": n, "key": k} for p, n, k in references]},
    }


def scaled_object(stage: Stage, settings: Settings) -> dict:
    spec = STAGE_INPUTS[stage]
    triggers = [
        {
            "type": "kafka",
            "name": f"{stage.value}-{lane.value}",
            "metadata": {
                "bootstrapServers": settings.kafka_bootstrap_servers,
                "consumerGroup": settings.group(stage.value, lane),
                "topic": settings.topic(spec.lane(lane).name),
                "lagThreshold": str(LAG_THRESHOLD[stage]),
                "offsetResetPolicy": "earliest",  # as the consumers: a new group reads from the start
            },
            "authenticationRef": {"name": "indexflow-kafka"},
        }
        for lane in (Priority.INTERACTIVE, Priority.BULK)
        if spec.laned or lane is Priority.INTERACTIVE
    ]
    return {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": f"indexflow-{stage.value}", "labels": _labels(stage.value)},
        "spec": {
            "scaleTargetRef": {"name": f"indexflow-{stage.value}"},
            "minReplicaCount": 1,
            "maxReplicaCount": settings.partitions,  # past one consumer a partition, replicas idle
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "triggers": triggers,
        },
    }


def manifests() -> list[dict]:
    config = configuration()
    settings = Settings(**{k.removeprefix("INDEXFLOW_").lower(): v for k, v in config.items()
                           if k in ("INDEXFLOW_KAFKA_BOOTSTRAP_SERVERS", "INDEXFLOW_TOPIC_PREFIX",
                                    "INDEXFLOW_PARTITIONS")})
    return [
        topics_job(),
        *(deployment(s) for s in SERVICES),
        gateway_service(),
        gateway_autoscaler(),
        kafka_authentication(),
        *(scaled_object(stage, settings) for stage in STAGE_INPUTS),
    ]


def render() -> str:
    header = ("# Written by `python -m deploy.k8s_manifests` from deploy/k8s_manifests.py: edit that, not this.\n"
              "# Settings: deploy/k8s/configuration.yaml. KEDA (keda.sh) must be installed for the ScaledObjects.\n")
    return header + yaml.safe_dump_all(manifests(), sort_keys=False, default_flow_style=False, width=120)


if __name__ == "__main__":
    sys.stdout.write(render())
