"""graph agent: ingest.follows -> follow, block and mute edges in Cassandra, by event time."""

from __future__ import annotations

from collections.abc import Sequence

import faust

from agents.runtime import Rejections, Runtime, run_batches
from pipeline.events import Event
from pipeline.graph import edges_by_kind
from pipeline.topology import TopicSpec


def register(app: faust.App, rt: Runtime, topic: faust.TopicT, spec: TopicSpec) -> None:
    async def handle(events: Sequence[Event]) -> Rejections:
        cass, _ = await rt.stores()
        for kind, edges in edges_by_kind(events).items():
            await cass.apply_edges(kind, edges)
        return []

    @app.agent(topic, name="graph")
    async def graph_agent(stream: faust.StreamT) -> None:
        await run_batches(rt, stream, spec, handle, "graph")
