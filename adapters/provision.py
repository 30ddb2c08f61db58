"""`starling init`: topics from topology.yaml and the CQL schema from schemas/cql, both idempotent."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

from cassandra import InvalidRequest
from cassandra.cluster import Cluster
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from adapters import cql
from pipeline.errors import StarlingError
from pipeline.settings import Settings, project_root
from pipeline.topology import load_topology

CQL_DIR = project_root() / "schemas" / "cql"
log = logging.getLogger("starling.provision")


def create_topics(settings: Settings, replication_factor: int = 1) -> list[str]:
    """Create missing topics and grow partition counts; returns the names of topics it created."""
    topology = load_topology(settings.topology_path)
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    existing = admin.list_topics(timeout=15).topics
    wanted = {settings.topic(name): spec for name, spec in topology.topics.items()}
    new = [
        NewTopic(name, num_partitions=spec.partitions, replication_factor=replication_factor,
                 config={"retention.ms": str(spec.retention_ms), "cleanup.policy": spec.cleanup})
        for name, spec in wanted.items() if name not in existing
    ]
    grow = [
        NewPartitions(name, spec.partitions)
        for name, spec in wanted.items()
        if name in existing and len(existing[name].partitions) < spec.partitions
    ]
    created = []
    for name, fut in (admin.create_topics(new, operation_timeout=30).items() if new else []):
        _wait(fut, f"creating topic {name}", tolerate="TOPIC_ALREADY_EXISTS")
        created.append(name)
    for name, fut in (admin.create_partitions(grow).items() if grow else []):
        _wait(fut, f"growing topic {name}", tolerate="INVALID_PARTITIONS")
    for name, spec in wanted.items():
        state = "created" if name in created else "exists"
        print(f"topic {name}: {state} ({spec.partitions} partitions)", file=sys.stderr)
    return created


def _wait(fut: object, what: str, tolerate: str) -> None:
    try:
        fut.result()  # type: ignore[attr-defined]
    except KafkaException as exc:
        if exc.args and getattr(exc.args[0], "name", lambda: "")() == tolerate:
            return
        raise StarlingError(f"{what} failed: {exc}") from None


def cql_statements(path: Path) -> list[str]:
    """Split a .cql file into statements (no semicolons inside our string literals)."""
    text = re.sub(r"--[^\n]*", "", path.read_text())
    return [s.strip() for s in text.split(";") if s.strip()]


def apply_cql_schema(settings: Settings, replication_factor: int = 1) -> None:
    cluster = _cluster(settings)
    try:
        session = cluster.connect()
        session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {settings.keyspace} WITH replication = "
            f"{{'class': 'SimpleStrategy', 'replication_factor': {replication_factor}}}"
        )
        session.set_keyspace(settings.keyspace)
        files = sorted(CQL_DIR.glob("*.cql"))
        for path in files:
            for stmt in cql_statements(path):
                try:
                    session.execute(stmt, timeout=60)
                except InvalidRequest as exc:
                    # CQL has no ALTER TABLE ... ADD IF NOT EXISTS: an existing column is success.
                    if not (stmt.upper().startswith("ALTER TABLE") and "already exists" in str(exc)):
                        raise
        print(f"keyspace {settings.keyspace}: schema applied ({len(files)} file(s))", file=sys.stderr)
    finally:
        cluster.shutdown()


def drop(settings: Settings, keyspace: bool = True) -> None:
    """Remove a namespace's topics and (unless keyspace is False) its keyspace (used by tests and
    benchmarks for their private namespace)."""
    topology = load_topology(settings.topology_path)
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    existing = admin.list_topics(timeout=15).topics
    names = [n for n in existing if n.startswith(settings.topic_prefix)] if settings.topic_prefix else [
        settings.topic(n) for n in topology.topics if settings.topic(n) in existing]
    for fut in (admin.delete_topics(names, operation_timeout=30).values() if names else []):
        try:
            fut.result()
        except KafkaException:
            pass
    if not keyspace:
        return
    cluster = _cluster(settings)
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {settings.keyspace}", timeout=60)
    finally:
        cluster.shutdown()


def _cluster(settings: Settings) -> Cluster:
    return cql.blocking_cluster(list(settings.cassandra_hosts), settings.cassandra_port)
