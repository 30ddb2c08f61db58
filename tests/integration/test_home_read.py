"""The home read on the real Redis: the followed celebrities' pages come in the same command as the
home page when the API process guesses who they are (the celebrity set it saw last, the reader's
viewer as it last decoded it), and the page is right whether the guess holds or not."""

import secrets
import time

from adapters.graph_cache import GraphCache
from adapters.hot_cache import CachedReads, HotCache, encode_viewer, viewer_key
from adapters.redis_store import TimelineCache, recent_key
from api.home import HomeTimelines
from pipeline.snowflake import Snowflake
from pipeline.topology import load_topology
from pipeline.visibility import Viewer


async def test_followed_celebrities_pages_ride_along_when_guessed_and_are_fetched_when_not(redis_client, cass, settings):
    cache = TimelineCache(redis_client, 800)
    graph = GraphCache(redis_client)
    views = CachedReads(cass, HotCache(redis_client))
    home = HomeTimelines(cass, cache, graph, 50, load_topology(settings.topology_path).tunables.fanout)
    await graph.celebrities(cass.celebrities)  # the set is built (from Cassandra), as a reader's first read does
    reader, a, b = (secrets.randbelow(1 << 62) for _ in range(3))
    await graph.update_celebrities({a: True, b: True})
    ids = Snowflake(7)
    now_ms = int(time.time() * 1000)
    a1, a2, b1 = (ids.next_id(now_ms + i) for i in range(3))
    await cache.fill(a, [a1, a2], key=recent_key(a))
    await cache.fill(b, [b1], key=recent_key(b))
    await cache.fill(reader, [])  # built, empty: the reader follows nobody who pushes

    fetched: list[list[int]] = []
    separate = cache.recent_pages

    async def counting(authors, *rest):
        fetched.append(list(authors))
        return await separate(authors, *rest)

    cache.recent_pages = counting  # type: ignore[method-assign]

    async def follows(*authors: int) -> None:  # what a refill after a follow change writes
        await redis_client.set(viewer_key(reader), encode_viewer(Viewer(reader, frozenset(authors), frozenset(), frozenset())))

    async def page() -> list[int]:
        return (await home.page(reader, views, 20, None, None))[1]

    await follows(a)
    assert await page() == [a2, a1]
    assert fetched == [[a]], "first read: this process knew neither the reader nor the celebrities"
    assert await page() == [a2, a1]
    assert fetched == [[a]], "guessed right: no second round trip"

    await follows(a, b)
    assert await page() == [b1, a2, a1]
    assert fetched == [[a], [b]], "b was not guessed: fetched on its own"
    assert await page() == [b1, a2, a1]
    assert fetched == [[a], [b]]

    await follows(b)
    assert await page() == [b1], "a was guessed but is no longer followed: its page is not used"
    assert fetched == [[a], [b]]

    # A page further down: the guessed pages are cut at the same cursor.
    assert (await home.page(reader, views, 20, b1 - 1, None))[1] == []
    await follows(a, b)
    assert (await home.page(reader, views, 1, a2, None))[1] == [a2]
    assert (await home.page(reader, views, 20, a2 - 1, None))[1] == [a1]


async def _read(cache: TimelineCache, celebs: str, version: str | None):
    return await cache.home_read(secrets.randbelow(1 << 62), time.time(), 20, None, None, 60,
                                 (celebs, f"{celebs}:v"), f"active-{celebs}", ["vw-none", "vg-none"],
                                 celebs_version=version)


async def test_the_celebrity_set_comes_with_a_read_only_when_its_version_moved(redis_client, monkeypatch):
    # A set of its own (the keys are module constants; these tests patch them).
    import adapters.graph_cache as graph_cache
    celebs = f"celebs-{secrets.token_hex(4)}"
    monkeypatch.setattr(graph_cache, "CELEBS", celebs)
    monkeypatch.setattr(graph_cache, "CELEBS_VERSION", f"{celebs}:v")
    cache, graph = TimelineCache(redis_client, 800), GraphCache(redis_client)
    a, b = (secrets.randbelow(1 << 62) for _ in range(2))

    async def load():
        return {a}

    first = await _read(cache, celebs, None)
    assert first.celebs == set(), "not built: the (empty) members come back"
    assert await graph.celebrities(load, first.celebs) == {a}  # built from "Cassandra", with a version
    built = await _read(cache, celebs, None)
    assert built.celebs == {"-", str(a)} and built.celebs_version is not None
    assert (await _read(cache, celebs, built.celebs_version)).celebs is None, "unchanged: not sent"

    await graph.update_celebrities({a: True, b: False})  # changes nothing: same version
    assert (await _read(cache, celebs, built.celebs_version)).celebs is None
    await graph.update_celebrities({b: True})
    moved = await _read(cache, celebs, built.celebs_version)
    assert moved.celebs == {"-", str(a), str(b)} and moved.celebs_version != built.celebs_version

    await redis_client.delete(celebs)  # evicted alone, its version kept: still sent (empty: rebuild)
    assert (await _read(cache, celebs, moved.celebs_version)).celebs == set()
    await graph.update_celebrities({b: False})  # not built: nothing added, nothing versioned
    assert (await _read(cache, celebs, moved.celebs_version)).celebs == set()


async def test_a_process_holding_the_celebrity_set_sees_a_new_celebrity(redis_client, cass, settings, monkeypatch):
    import adapters.graph_cache as graph_cache
    import api.home
    celebs = f"celebs-{secrets.token_hex(4)}"
    for module in (graph_cache, api.home):
        monkeypatch.setattr(module, "CELEBS", celebs)
        monkeypatch.setattr(module, "CELEBS_VERSION", f"{celebs}:v")
    cache, graph = TimelineCache(redis_client, 800), GraphCache(redis_client)
    views = CachedReads(cass, HotCache(redis_client))
    home = HomeTimelines(cass, cache, graph, 50, load_topology(settings.topology_path).tunables.fanout)
    reader, a, b = (secrets.randbelow(1 << 62) for _ in range(3))
    await graph.celebrities(cass.celebrities)
    await graph.update_celebrities({a: True})
    ids = Snowflake(8)
    now_ms = int(time.time() * 1000)
    a1, b1 = ids.next_id(now_ms), ids.next_id(now_ms + 1)
    await cache.fill(a, [a1], key=recent_key(a))
    await cache.fill(b, [b1], key=recent_key(b))
    await cache.fill(reader, [])
    await redis_client.set(viewer_key(reader), encode_viewer(Viewer(reader, frozenset({a, b}), frozenset(), frozenset())))

    assert (await home.page(reader, views, 20, None, None))[1] == [a1], "b is no celebrity yet (and pushes nothing here)"
    assert (await home.page(reader, views, 20, None, None))[1] == [a1]
    await graph.update_celebrities({b: True})
    assert (await home.page(reader, views, 20, None, None))[1] == [b1, a1], "the set changed: read again"
