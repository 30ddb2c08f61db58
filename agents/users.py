"""users agent: ingest.users -> Cassandra users (and the handle index)."""

from __future__ import annotations

from collections.abc import Sequence

import faust

from agents.runtime import Runtime, run_batches
from pipeline.events import Event
from pipeline.model import User
from pipeline.topology import TopicSpec
from adapters.cassandra_store import write_ts_us


def register(app: faust.App, rt: Runtime, topic: faust.TopicT, spec: TopicSpec) -> None:
    async def handle(events: Sequence[Event]) -> None:
        cass, _ = await rt.stores()
        await cass.save_users((User.from_event(e), write_ts_us(e.occurred_at))
                              for e in events if e.type == "user.registered")

    @app.agent(topic, name="users")
    async def users_agent(stream: faust.StreamT) -> None:
        await run_batches(rt, stream, spec, handle, "users")
