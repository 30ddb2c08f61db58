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
