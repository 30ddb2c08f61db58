"""A faust worker whose one agent does nothing with its events: the baseline for an agent's rate.

    python -m bench.noop_worker   (with the benchmark's STARLING_* environment; group <app id>-noop)

Same broker settings (and consumer transport), collector thresholds and batching (take_events of batch_max within batch_within_s) as Starling's
agents, so the difference to them is what the agent's own work costs.
"""

from __future__ import annotations

import os
import sys

import faust

from adapters.faust_transport import use_short_fetch_wait
from starling import heap

from pipeline.settings import Settings
from pipeline.topology import load_topology


def main() -> None:
    heap.tune()  # as the Starling worker (agents/main.py)
    settings = Settings.from_env()
    tun = load_topology(settings.topology_path).tunables
    (settings.state_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = faust.App(f"{settings.app_id}-noop", broker=f"kafka://{settings.kafka_bootstrap}", store="memory://",
                    key_serializer="raw", value_serializer="raw", web_enabled=False, topic_disable_leader=True,
                    consumer_auto_offset_reset="earliest", topic_allow_declare=False,
                    datadir=str(settings.state_dir / "faust" / f"{settings.app_id}-noop"),
                    broker_commit_interval=1.0, broker_commit_every=2000)
    use_short_fetch_wait(app, tun.fetch_max_wait_ms)
    topic = app.topic(settings.topic(os.environ.get("NOOP_TOPIC", "trending.hashtags")),
                      key_serializer="raw", value_serializer="raw")

    @app.agent(topic, name="noop")
    async def noop(stream: faust.StreamT) -> None:  # type: ignore[type-arg]
        async for _batch in stream.take_events(tun.batch_max, within=tun.batch_within_s):
            pass

    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    app.main()


if __name__ == "__main__":
    main()
