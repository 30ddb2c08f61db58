"""graph agent: ingest.follows -> Cassandra followers/following, upserts and deletes by event time."""

from __future__ import annotations

from collections.abc import Sequence

import faust

from agents.runtime import Runtime, run_batches
from pipeline.events import Event
from pipeline.graph import follow_edges
from pipeline.topology import TopicSpec


def register(app: faust.App, rt: Runtime, topic: faust.TopicT, spec: TopicSpec) -> None:
    async def handle(events: Sequence[Event]) -> None:
        cass, _ = await rt.stores()
        await cass.apply_follows(follow_edges(events))

    @app.agent(topic, name="graph")
    async def graph_agent(stream: faust.StreamT) -> None:
        await run_batches(rt, stream, spec, handle, "graph")
