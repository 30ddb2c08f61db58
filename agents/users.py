"""users agent: ingest.users -> Cassandra users; handles are claimed once, case-insensitively."""

from __future__ import annotations

from collections.abc import Sequence

import faust

from adapters.cassandra_store import write_ts_us
from agents.runtime import Positions, Rejections, Runtime, run_batches
from pipeline.events import Event
from pipeline.model import User
from pipeline.references import Problem
from pipeline.topology import TopicSpec


def register(app: faust.App, rt: Runtime, topic: faust.TopicT, spec: TopicSpec) -> None:
    async def handle(events: Sequence[Event], _positions: Positions) -> Rejections:
        cass, _ = await rt.stores()
        rejected: Rejections = []
        new_users = []
        for e in events:
            if e.type == "user.registered":
                owner = await cass.claim_handle(e.data["handle"], e.actor)
                if owner != e.actor:
                    rejected.append((e, Problem("handle_taken", f"@{e.data['handle']} belongs to user {owner}")))
                else:
                    new_users.append((User.from_event(e), write_ts_us(e.occurred_at)))
        await cass.save_users(new_users)
        updated = [e.actor for e in events if e.type == "user.updated"]
        await cass.update_users((e.actor, e.data, write_ts_us(e.occurred_at))
                                for e in events if e.type == "user.updated")
        # Write the rows through to the API's cache as Cassandra now has them (event-time order).
        if updated:
            await rt.hot.put_users((await cass.get_users(updated)).values())
        return rejected

    @app.agent(topic, name="users")
    async def users_agent(stream: faust.StreamT) -> None:
        await run_batches(rt, stream, spec, handle, "users")
