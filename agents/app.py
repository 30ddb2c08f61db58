"""The faust app: one worker process hosting the ingest agents named in topology.yaml."""

from __future__ import annotations

import faust

from agents import fanout, graph, users
from agents.runtime import Runtime
from pipeline.events import Contracts
from pipeline.settings import Settings
from pipeline.topology import Topology

AGENT_MODULES = {"users": users, "graph": graph, "fanout": fanout}


def build_app(settings: Settings, topology: Topology) -> tuple[faust.App, Runtime]:
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        topic_disable_leader=True,
        topic_replication_factor=1,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        # Commit at least every second: the replay window after a crash (sinks are idempotent,
        # so replays cost time, not correctness).
        broker_commit_interval=1.0,
        broker_commit_every=2000,
        producer_acks=-1,
        # Topics are created by `starling init` from topology.yaml, with their partitions.
        topic_allow_declare=False,
    )
    deadletter = app.topic(settings.topic("deadletter"), key_serializer="raw", value_serializer="raw")
    rt = Runtime(settings=settings, topology=topology, contracts=Contracts(), deadletter=deadletter)
    for name, spec in topology.agents.items():
        module = AGENT_MODULES[name]
        topic = app.topic(settings.topic(spec.consumes), key_serializer="raw", value_serializer="raw")
        module.register(app, rt, topic, topology.topics[spec.consumes])
    return app, rt
