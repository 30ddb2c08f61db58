"""The graph views in the real Redis."""

import secrets
import time

from adapters.graph_cache import ACTIVE, GraphCache


async def test_prune_active_forgets_only_readers_older_than_the_cutoff_in_bounded_steps(redis_client):
    graph = GraphCache(redis_client)
    tag = secrets.token_hex(4)
    stale = [f"{tag}:stale:{i}" for i in range(5)]
    # Scores far in the past: no other test's reader is stamped before 2000 (epoch seconds).
    await redis_client.zadd(ACTIVE, {m: 1000 + i for i, m in enumerate(stale)})
    await redis_client.zadd(ACTIVE, {f"{tag}:edge": 2000})  # exactly at the cutoff: kept
    now = time.time()
    await graph.touch_active(int.from_bytes(bytes.fromhex(tag), "big"), now)

    # Steps of 2: three calls remove 2, 2 and 1.
    assert await graph.prune_active(2000, step=2) == 5
    left = await redis_client.zmscore(ACTIVE, [*stale, f"{tag}:edge", str(int.from_bytes(bytes.fromhex(tag), "big"))])
    assert left[:5] == [None] * 5
    assert left[5] == 2000
    assert left[6] == now
    assert await graph.prune_active(2000, step=2) == 0  # idempotent


async def test_pruned_readers_read_as_never_seen(redis_client):
    graph = GraphCache(redis_client)
    reader = secrets.randbelow(1 << 62)
    await graph.touch_active(reader, 1500)
    assert await graph.last_reads([reader]) == [1500.0]
    await graph.prune_active(1600)
    assert await graph.last_reads([reader]) == [None]
