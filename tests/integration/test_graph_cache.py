"""The graph views in the real Redis."""

import secrets
import time

import numpy as np
import pytest

from adapters.graph_cache import ACTIVE, GraphCache
from adapters.redis_store import TimelineCache, timeline_key


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


async def _last_reads(graph, users):
    """last_reads with each reader's NaN (not in the set) as None."""
    complete, seen = await graph.last_reads(users)
    return complete, [None if np.isnan(x) else float(x) for x in seen]


async def test_pruned_readers_read_as_never_seen(redis_client):
    graph = GraphCache(redis_client)
    reader = secrets.randbelow(1 << 62)
    await graph.touch_active(reader, 1500)
    assert (await _last_reads(graph, [reader]))[1] == [1500.0]
    await graph.prune_active(1600)
    assert (await _last_reads(graph, [reader]))[1] == [None]


def _private_active_set(monkeypatch):
    """A last-read set of this test's own (the scan still sees every timeline in the database)."""
    import adapters.graph_cache as graph_cache

    key = f"active-{secrets.token_hex(4)}"
    monkeypatch.setattr(graph_cache, "ACTIVE", key)
    return key


async def test_a_repaired_last_read_set_holds_every_reader_with_a_built_timeline(redis_client, monkeypatch):
    """A set started again by a read (after eviction or a flush) holds only the readers since: it
    reads as incomplete until a scan of the built timelines has added the others."""
    key = _private_active_set(monkeypatch)
    graph, cache = GraphCache(redis_client), TimelineCache(redis_client, 800)
    built_a, built_b, recent, gone = (secrets.randbelow(1 << 62) for _ in range(4))
    for reader in (built_a, built_b, recent):
        await cache.fill(reader, [])
    await redis_client.set(f"{timeline_key(built_a)}:lock", "x", ex=10)  # a rebuild lock is no reader
    now = time.time()
    await graph.touch_active(recent, now + 100)  # read after the repair's clock: kept
    await graph.touch_active(gone, 1500)  # no timeline: left as it is
    assert await _last_reads(graph, [built_a, recent, gone]) == (False, [None, now + 100, 1500.0])

    assert await graph.repair_active(now, scan_count=2) is True  # several scan steps
    assert await _last_reads(graph, [built_a, built_b, recent, gone]) == (True, [now, now, now + 100, 1500.0])
    assert await redis_client.zscore(key, f"{built_a}:lock") is None
    assert [m for m in await redis_client.zrange(key, 0, -1) if m.startswith("?")] == [], "no marker left"
    assert await graph.repair_active(now + 5) is True  # complete already: nothing changes
    assert (await _last_reads(graph, [built_a]))[1] == [now]
    await graph.prune_active(now + 10)  # pruning never removes the sentinel
    assert (await _last_reads(graph, [built_a]))[0] is True


async def test_a_repair_overtaken_by_the_loss_of_the_set_leaves_it_incomplete(redis_client, monkeypatch):
    key = _private_active_set(monkeypatch)
    graph, cache = GraphCache(redis_client), TimelineCache(redis_client, 800)
    built = secrets.randbelow(1 << 62)
    await cache.fill(built, [])
    for step in ("_repair_add", "_repair_end"):
        real = getattr(graph, step)

        async def lost_first(keys, args, real=real):
            await redis_client.delete(key)  # evicted while the scan ran
            await graph.touch_active(7, time.time())  # and started again by a read
            return await real(keys=keys, args=args)

        monkeypatch.setattr(graph, step, lost_first)
        assert await graph.repair_active(time.time()) is False, step
        monkeypatch.setattr(graph, step, real)
        assert (await _last_reads(graph, [built]))[0] is False, step
    assert await graph.repair_active(time.time()) is True
    assert await _last_reads(graph, [built, 7]) == (True, [pytest.approx(time.time(), abs=60)] * 2)


async def test_a_rebuild_of_the_celebrity_set_never_writes_a_read_a_change_overtook(redis_client, monkeypatch):
    """The graph agent writes Cassandra, then Redis; a reader rebuilding the (evicted) set may read
    Cassandra just before a new celebrity lands there. Writing what it read would leave that
    celebrity out of the set for good: their tweets pushed to nobody and pulled by nobody."""
    import adapters.graph_cache as graph_cache

    key = f"celebs-{secrets.token_hex(4)}"
    monkeypatch.setattr(graph_cache, "CELEBS", key)
    monkeypatch.setattr(graph_cache, "CELEBS_VERSION", f"{key}:v")
    graph = GraphCache(redis_client)
    a, b = (secrets.randbelow(1 << 62) for _ in range(2))
    cassandra = {a}
    reads = 0

    async def load_overtaken():
        nonlocal reads
        reads += 1
        read = set(cassandra)
        if reads == 1:  # the agent's change lands after this read: Cassandra, then Redis
            cassandra.add(b)
            await graph.update_celebrities({b: True})
        return read

    await graph.celebrities(load_overtaken)
    assert reads == 2, "the first read was overtaken: read again"
    assert await redis_client.smembers(key) == {"-", str(a), str(b)}

    # Changes that never stop: a few reads, then served without building the set.
    await redis_client.delete(key)

    async def load_always_overtaken():
        await graph.update_celebrities({a: True})
        return {a, b}

    assert await graph.celebrities(load_always_overtaken) == {a, b}
    assert await redis_client.exists(key) == 0
