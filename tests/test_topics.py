"""`topics apply` against the real broker: creates what is missing, twice is harmless, and a
topic that differs from its declaration is reported."""

from __future__ import annotations

from confluent_kafka.admin import NewTopic
from click.testing import CliRunner

from services.cli.main import cli
from services.runtime.kafka import admin_client
from services.runtime.settings import Settings
from topics import TOPICS, apply_topics


def test_apply_twice(settings: Settings):
    admin = admin_client(settings)
    names = sorted(settings.topic(spec.name) for spec in TOPICS)

    first = apply_topics(admin, TOPICS, settings)
    assert sorted(first.created) == names and first.ok

    second = apply_topics(admin, TOPICS, settings)
    assert second.created == [] and sorted(second.unchanged) == names and second.ok

    on_broker = admin.list_topics(timeout=10).topics
    assert all(len(on_broker[name].partitions) == settings.partitions for name in names)


def test_mismatch_is_reported(settings: Settings):
    admin = admin_client(settings)
    wrong = settings.topic("status")
    admin.create_topics([NewTopic(wrong, num_partitions=2, replication_factor=1)])[wrong].result()

    report = apply_topics(admin, TOPICS, settings)

    assert not report.ok
    [line] = report.mismatches
    assert line.startswith(f"{wrong}: 2 partitions on the broker, 6 declared")
    assert "retention.ms" in line  # its configs were not declared ones either
    assert wrong not in report.created


def test_cli_topics_apply_exit_codes(settings: Settings):
    runner = CliRunner()
    ok = runner.invoke(cli, ["topics", "apply"])
    assert ok.exit_code == 0, ok.output
    assert ok.output.count("created") == len(TOPICS)

    admin = admin_client(settings)
    stray = Settings(topic_prefix=f"{settings.topic_prefix}x.")
    admin.create_topics([NewTopic(stray.topic("dlq"), num_partitions=1, replication_factor=1)])[stray.topic("dlq")].result()
    bad = runner.invoke(cli, ["topics", "apply"], env={"INDEXFLOW_TOPIC_PREFIX": stray.topic_prefix})
    assert bad.exit_code == 1
    assert "mismatch" in bad.output and stray.topic("dlq") in bad.output


def test_replication_and_min_insync_are_checked_against_the_cluster(settings: Settings):
    admin = admin_client(settings)
    assert apply_topics(admin, TOPICS, settings).ok  # created with one replica, the cluster's default ISR

    durable = settings.model_copy(update={"replication_factor": 3, "min_insync_replicas": 2})
    report = apply_topics(admin, TOPICS, durable)
    assert len(report.mismatches) == len(TOPICS)
    assert all("1 replicas on the broker, replication factor 3 declared" in m for m in report.mismatches)
    assert all("min.insync.replicas=None on the broker, 2 declared" in m for m in report.mismatches)


def test_min_insync_replicas_is_set_on_creation(settings: Settings):
    admin = admin_client(settings)
    declared = settings.model_copy(update={"min_insync_replicas": 1})
    assert apply_topics(admin, TOPICS, declared).created
    again = apply_topics(admin, TOPICS, declared)
    assert again.ok and len(again.unchanged) == len(TOPICS)


def test_topics_check_fails_until_every_topic_exists(settings: Settings):
    # What a Kubernetes initContainer waits on: a service started before the topics Job ran would
    # have the broker create them with its defaults (one partition, no compaction).
    runner = CliRunner()
    missing = runner.invoke(cli, ["topics", "check"])
    assert missing.exit_code == 1 and settings.topic("documents") in missing.output
    assert settings.topic("documents") not in admin_client(settings).list_topics(timeout=10).topics  # created nothing
    apply_topics(admin_client(settings), TOPICS, settings)
    assert runner.invoke(cli, ["topics", "check"]).exit_code == 0
