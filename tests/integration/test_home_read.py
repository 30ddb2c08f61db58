"""The home read on the real Redis: the followed celebrities' pages come in the same command as the
home page when the API process guesses who they are (the celebrity set it saw last, the reader's
viewer as it last decoded it), and the page is right whether the guess holds or not."""

import secrets
import time

from adapters.graph_cache import CELEBS, GraphCache
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
    await redis_client.sadd(CELEBS, str(a), str(b))
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
