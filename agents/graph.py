"""graph agent: ingest.follows -> follow, block and mute edges in Cassandra, by event time, and
exact follower counts (offset-guarded, written before the edges) with the celebrity set; follows
notify the followee (agents/notifications.py)."""

from __future__ import annotations

from collections.abc import Sequence

import faust

from agents import notifications
from agents.runtime import Positions, Rejections, Runtime, run_batches
from pipeline.events import Event
from pipeline.graph import apply_follow_counts, edges_by_kind, timeline_changes
from pipeline.topology import TopicSpec


def register(app: faust.App, rt: Runtime, topic: faust.TopicT, spec: TopicSpec) -> None:
    notify = notifications.step(rt)
    policy = rt.topology.tunables.fanout
    per_author = rt.topology.tunables.rebuild_per_author

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
        by_kind = edges_by_kind(events)
        for kind, edges in by_kind.items():
            await cass.apply_edges(kind, edges)
        if "follow" in by_kind:
            # Before the backfills below: a fan-out that read a followee's list under the old
            # generation delivered a tweet stored before this point, which the backfill then finds.
            await rt.graph.new_follower_generations(t for _s, t, _p, _ms in by_kind["follow"])
        # Both ends: a follow changes the follower's view, a block both users' views.
        await rt.hot.invalidate_viewers(u for edges in by_kind.values() for s, t, _p, _ms in edges for u in (s, t))
        await update_timelines(timeline_changes(by_kind))
        await notify(events)  # follows
        return []

    async def update_timelines(changes: list[tuple[str, int, int]]) -> None:
        """Idempotent (removals; merges into the built list, sorted), applied in event order after
        the edges."""
        cass, timelines = await rt.stores()
        following = await cass.follow_edges_among(
            (reader, author) for action, reader, author in changes if action == "backfill_if_following")
        for action, reader, author in changes:
            recent = await cass.recent_tweet_ids(author, per_author)
            if action == "remove":
                await timelines.remove((reader, t) for t in recent)
            elif action == "backfill" or (reader, author) in following:
                # Merged in, not appended: older entries at the tail would hide newer ones from
                # a read of the tail (adapters/redis_store.py).
                await timelines.fill(reader, recent, create=False)

    @app.agent(topic, name="graph")
    async def graph_agent(stream: faust.StreamT) -> None:
        await run_batches(rt, stream, spec, handle, "graph")
