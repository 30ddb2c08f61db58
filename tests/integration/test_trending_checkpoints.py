"""The trending agent's ranking and checkpoint writes (agents/trending.rank_into) through the real
Redis: a partition taken away by a rebalance while the snapshots were being built keeps what its
new owner wrote."""

from __future__ import annotations

import time

import orjson

from agents.trending import checkpoint_key, partial_key, rank_into
from pipeline.trending import Outcome, TrendingConfig, TrendingTracker

CONFIG = TrendingConfig()


def _tracker(now: float, tag: str) -> TrendingTracker:
    tr = TrendingTracker(CONFIG, now - 60)
    tr.advance(now)
    assert all(tr.observe(tag, None, 100 + i, 1000 + i, now - 30 + i) is Outcome.COUNTED for i in range(5))
    return tr


def _figures(tr: TrendingTracker, tag: str) -> tuple[int, int, int]:
    got = tr.stats(tag, None, "5m")
    assert got is not None
    return got.count, got.tweets, got.authors


async def test_a_partition_revoked_during_the_snapshot_build_keeps_its_new_owners_checkpoint(redis_client):
    now = time.time()
    trackers = {0: _tracker(now, "kept"), 1: _tracker(now, "revoked")}
    started = {0: now - 60, 1: now - 60}
    assigned = {0, 1}
    # The new owner of partition 1 has restored and checkpointed it already.
    await redis_client.set(checkpoint_key(1), b"the new owner's")
    await redis_client.set(partial_key(1), b"the new owner's")

    # The rebalance lands while the snapshots are built (in a thread): partition 1's builder
    # is the moment it is taken away.
    build = trackers[1].snapshot_later

    def revoking_build():  # type: ignore[no-untyped-def]
        made = build()

        def built():  # type: ignore[no-untyped-def]
            assigned.discard(1)
            return made()
        return built

    trackers[1].snapshot_later = revoking_build  # type: ignore[method-assign]

    await rank_into(redis_client, trackers, started, lambda: set(assigned), now, checkpoint=True)

    assert assigned == {0}, "the build ran"
    assert await redis_client.get(checkpoint_key(1)) == "the new owner's"
    assert await redis_client.get(partial_key(1)) == "the new owner's"
    # The partition this worker still owns got both, and its checkpoint restores its counts.
    restored = TrendingTracker.restore(CONFIG, orjson.loads(await redis_client.get(checkpoint_key(0))))
    assert _figures(restored, "kept") == _figures(trackers[0], "kept") == (5, 5, 5)
    partial = orjson.loads(await redis_client.get(partial_key(0)))
    assert partial["since"] == started[0] and {"global|5m", "global|1h", "global|24h"} <= set(partial["lists"])
    assert await redis_client.ttl(partial_key(0)) > 0


async def test_without_a_checkpoint_only_the_partials_are_written(redis_client):
    now = time.time()
    trackers = {3: _tracker(now, "solo")}
    await rank_into(redis_client, trackers, {3: now - 60}, lambda: {3}, now, checkpoint=False)
    assert await redis_client.get(checkpoint_key(3)) is None
    assert orjson.loads(await redis_client.get(partial_key(3)))["since"] == now - 60
