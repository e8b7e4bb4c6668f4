"""Create missing topics and report any that differ from their declaration. Idempotent."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType, TopicMetadata

from services.runtime.settings import Settings
from topics.catalog import TopicSpec


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def apply_topics(
    admin: AdminClient, specs: Iterable[TopicSpec], settings: Settings, timeout: float = 15.0
) -> ApplyReport:
    specs = list(specs)
    report = ApplyReport()
    existing = admin.list_topics(timeout=timeout).topics

    missing = [s for s in specs if settings.topic(s.name) not in existing]
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(
                    settings.topic(s.name),
                    num_partitions=settings.partitions,
                    replication_factor=settings.replication_factor,
                    config=_declared_configs(s, settings),
                )
                for s in missing
            ],
            request_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result()
                report.created.append(name)
            except KafkaException as exc:
                # Another process created it meanwhile: check it like any existing topic.
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
        existing = admin.list_topics(timeout=timeout).topics

    for spec in specs:
        name = settings.topic(spec.name)
        if name in report.created:
            continue
        problems = _differences(admin, spec, name, existing[name], settings, timeout)
        if problems:
            report.mismatches.append(f"{name}: " + "; ".join(problems))
        else:
            report.unchanged.append(name)
    return report


def missing_topics(admin: AdminClient, specs: Iterable[TopicSpec], settings: Settings, timeout: float = 15.0) -> list[str]:
    """The declared topics the cluster does not have (what a service must not start without: a
    producer would have the broker create them with its defaults, one partition and no compaction)."""
    existing = admin.list_topics(timeout=timeout).topics
    return [settings.topic(s.name) for s in specs if settings.topic(s.name) not in existing]


def _declared_configs(spec: TopicSpec, settings: Settings) -> dict[str, str]:
    configs = dict(spec.configs)
    if settings.min_insync_replicas:
        configs["min.insync.replicas"] = str(settings.min_insync_replicas)
    return configs


def _differences(
    admin: AdminClient, spec: TopicSpec, name: str, metadata: TopicMetadata, settings: Settings, timeout: float
) -> list[str]:
    problems = []
    partitions = len(metadata.partitions)
    replicas = min((len(p.replicas) for p in metadata.partitions.values()), default=0)
    if replicas != settings.replication_factor:
        problems.append(
            f"{replicas} replicas on the broker, replication factor {settings.replication_factor} declared "
            "(raise it with kafka-reassign-partitions)"
        )
    if partitions != settings.partitions:
        problems.append(
            f"{partitions} partitions on the broker, {settings.partitions} declared "
            "(every pipeline topic must share one partition count to keep a document's records "
            "in step; recreate the topic)"
        )
    resource = ConfigResource(ResourceType.TOPIC, name)
    actual = admin.describe_configs([resource], request_timeout=timeout)[resource].result()
    for key, wanted in _declared_configs(spec, settings).items():
        have = actual[key].value if key in actual else None
        if have != wanted:
            problems.append(f"{key}={have} on the broker, {wanted} declared")
    # A cluster default above the replica count makes every acks=all produce fail: the pipeline
    # would stall on its first write rather than at apply time.
    in_sync = actual.get("min.insync.replicas")
    if in_sync is not None and in_sync.value and int(in_sync.value) > replicas:
        problems.append(f"min.insync.replicas={in_sync.value} above the {replicas} replicas: every write would fail")
    return problems
