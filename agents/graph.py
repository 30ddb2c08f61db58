"""graph agent: ingest.follows -> follow, block and mute edges in Cassandra, by event time, and
exact follower counts (offset-guarded, written before the edges) with the celebrity set."""

from __future__ import annotations

from collections.abc import Sequence

import faust

from agents.runtime import Positions, Rejections, Runtime, run_batches
from pipeline.events import Event
from pipeline.graph import apply_follow_counts, edges_by_kind
from pipeline.topology import TopicSpec


def register(app: faust.App, rt: Runtime, topic: faust.TopicT, spec: TopicSpec) -> None:
    policy = rt.topology.tunables.fanout

    async def handle(events: Sequence[Event], positions: Positions) -> Rejections:
        cass, _ = await rt.stores()
        follows = [(edge, p, o) for e, (p, o) in zip(events, positions)
                   for edge in edges_by_kind([e]).get("follow", [])]
        if follows:
            followees = {edge[1] for edge, _, _ in follows}
            before = await cass.follow_edges_among((edge[0], edge[1]) for edge, _, _ in follows)
            counts = apply_follow_counts(follows, before, await cass.follower_counts(followees))
            # Counts first: a crash before the edges are written replays them uncounted (guard).
            await cass.save_follower_counts(counts)
            flags = {u: policy.is_pulled(c.followers) for u, c in counts.items()}
            await cass.set_celebrities(flags)
            await rt.graph.set_follower_counts({u: c.followers for u, c in counts.items()})
            await rt.graph.update_celebrities(flags)
        for kind, edges in edges_by_kind(events).items():
            await cass.apply_edges(kind, edges)
        return []

    @app.agent(topic, name="graph")
    async def graph_agent(stream: faust.StreamT) -> None:
        await run_batches(rt, stream, spec, handle, "graph")
