"""The faust app: one worker process hosting the ingest agents named in topology.yaml."""

from __future__ import annotations

import faust

from adapters.faust_transport import use_short_fetch_wait
from agents import engagement, fanout, graph, moderation, trending, users
from agents.runtime import Runtime, redeliver
from pipeline.events import Contracts
from pipeline.settings import Settings
from pipeline.topology import Topology

AGENT_MODULES = {"users": users, "graph": graph, "moderation": moderation, "fanout": fanout, "engagement": engagement}


def build_app(settings: Settings, topology: Topology) -> tuple[faust.App, Runtime]:
    datadir = settings.state_dir / "faust" / settings.app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)  # faust creates only the last level
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        # faust keeps table and leader files under its datadir (default: ./<app id>-data in the
        # current directory); the state dir is where everything a run leaves behind belongs.
        datadir=str(datadir),
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
        # A worker that dies without leaving the group (SIGKILL, a lost host) holds its partitions
        # until this times out: 10 s instead of faust's 60 s before a replacement takes over.
        # Heartbeats come from a background task every 3 s, so long batches do not trip it.
        broker_session_timeout=10.0,
        # Topics are created by `starling init` from topology.yaml, with their partitions.
        topic_allow_declare=False,
    )
    use_short_fetch_wait(app, topology.tunables.fetch_max_wait_ms)

    def raw_topic(name: str) -> faust.TopicT:
        return app.topic(settings.topic(name), key_serializer="raw", value_serializer="raw")

    rt = Runtime(settings=settings, topology=topology, contracts=Contracts(),
                 deadletter=raw_topic("deadletter"), retry_topic=raw_topic("retry"),
                 # Derived events: re-keyed into ingest and trending topics, verdicts and what
                 # moderation lets through (produced by Runtime.emit_all).
                 derived_topics=frozenset({"ingest.engagements", "trending.hashtags", "verdicts", "tweets.moderated"}))
    for name, spec in topology.agents.items():
        if name == "retry":
            _register_retry(app, rt, raw_topic(spec.consumes))
            continue
        if name == "trending":
            trending.register(app, rt, raw_topic(spec.consumes), topology.topics[spec.consumes], raw_topic("trends"))
            continue
        AGENT_MODULES[name].register(app, rt, raw_topic(spec.consumes), topology.topics[spec.consumes])
    return app, rt


def _register_retry(app: faust.App, rt: Runtime, topic: faust.TopicT) -> None:
    @app.agent(topic, name="retry")
    async def retry_agent(stream: faust.StreamT) -> None:
        await redeliver(rt, stream)
