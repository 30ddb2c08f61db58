"""The read caches on the real Redis: a reader's stale fill never outlives an agent's change.

Each test plays the interleaving that would go wrong with a naive cache-aside: the reader loads the
old row from Cassandra, the agent writes the new row and updates the cache, then the reader's fill
arrives.
"""

import asyncio
import secrets

from adapters.hot_cache import (TOMBSTONE, TRACKED_LOCAL_TTL_S, CachedReads, HotCache, encode_viewer, tweet_key,
                                user_key, viewer_key)
from adapters.redis_mux import Multiplexed
from pipeline.counts import Counts
from pipeline.model import Tweet, User
from pipeline.visibility import Viewer


def _id() -> int:
    return secrets.randbelow(1 << 62)


def _tweet(tid: int, author: int = 7) -> Tweet:
    return Tweet(tweet_id=tid, author_id=author, text="hello #x", reply_to=None, quote_of=None,
                 created_at=1_700_000_000_000, media=({"url": "https://e.x/a.png", "alt": "a"},), retweet_of=None)


async def test_tweets_round_trip_and_are_loaded_once(redis_client):
    hot = HotCache(redis_client)
    ids = [_id(), _id()]
    calls: list[list[int]] = []

    async def load(missing):
        calls.append(missing)
        return {i: _tweet(i) for i in missing}

    first = await hot.tweets(ids, load)
    second = await hot.tweets(ids, load)
    assert first == second == {i: _tweet(i) for i in ids}
    assert calls == [ids], "the second read is served from Redis"


async def test_absent_tweets_are_not_cached(redis_client):
    """A tweet accepted a moment ago may not be written yet: absence must not stick."""
    hot = HotCache(redis_client)
    tid = _id()

    async def nothing(_missing):
        return {}

    assert await hot.tweets([tid], nothing) == {}
    assert await redis_client.exists(tweet_key(tid)) == 0


async def test_a_delete_wins_over_a_concurrent_stale_fill(redis_client):
    hot = HotCache(redis_client)
    tid = _id()
    deleted = asyncio.Event()

    async def stale_load(missing):
        # The reader read the live row, then the agent deleted the tweet before the fill.
        await hot.tombstone_tweets([tid])
        deleted.set()
        return {i: _tweet(i) for i in missing}

    await hot.tweets([tid], stale_load)
    assert deleted.is_set()
    assert await redis_client.get(tweet_key(tid)) == TOMBSTONE

    async def must_not_load(_missing):
        raise AssertionError("a tombstone answers without Cassandra")

    assert await hot.tweets([tid], must_not_load) == {}


async def test_a_delete_after_a_fill_overwrites_it(redis_client):
    hot = HotCache(redis_client)
    tid = _id()

    async def load(missing):
        return {i: _tweet(i) for i in missing}

    assert tid in await hot.tweets([tid], load)
    await hot.tombstone_tweets([tid])
    assert await hot.tweets([tid], load) == {}


async def test_a_written_through_user_wins_over_a_stale_fill(redis_client):
    hot = HotCache(redis_client)
    uid = _id()
    old = User(uid, "ann", "Ann", "", False, None, 1)
    new = User(uid, "ann", "Ann", "", True, "FR", 1)

    async def stale_load(missing):
        await hot.put_users([new])  # the users agent's write-through lands first
        return {uid: old}

    await hot.users([uid], stale_load)

    async def must_not_load(_missing):
        raise AssertionError("served from the cache")

    assert (await hot.users([uid], must_not_load))[uid] == new
    assert 0 < await redis_client.ttl(user_key(uid))


async def test_regions_read_the_cached_profiles_and_load_only_the_rest(redis_client):
    hot = HotCache(redis_client)
    cached, unset, uncached, unknown = _id(), _id(), _id(), _id()
    await hot.put_users([User(cached, "ann", "Ann", "", False, "FR", 1), User(unset, "bob", "Bob", "", True, None, 2)])
    calls: list[list[int]] = []

    async def load(missing):
        calls.append(sorted(missing))
        return {uncached: User(uncached, "cy", "Cy", "", False, "BR", 3)}  # `unknown` is not registered

    assert await hot.regions([cached, unset, uncached, unknown, cached], load) == {cached: "FR", unset: None,
                                                                                  uncached: "BR"}
    assert calls == [sorted([uncached, unknown])]
    # The loaded profile was cached whole: users() finds it without loading.

    async def must_not_load(_missing):
        raise AssertionError("served from the cache")

    assert (await hot.users([uncached], must_not_load))[uncached].handle == "cy"
    assert await hot.regions([], must_not_load) == {}


async def test_a_graph_change_during_a_viewer_load_prevents_the_fill(redis_client):
    hot = HotCache(redis_client)
    uid, other = _id(), _id()
    before_block = Viewer(uid, frozenset({other}), frozenset(), frozenset())
    after_block = Viewer(uid, frozenset(), frozenset({other}), frozenset({other}))

    async def stale_load(_user):
        await hot.invalidate_viewers([uid, other])  # the graph agent applied a block meanwhile
        return before_block

    assert await hot.viewer(uid, stale_load) == before_block  # this request saw the old state...
    assert await redis_client.exists(viewer_key(uid)) == 0    # ...but did not cache it

    async def fresh_load(_user):
        return after_block

    assert await hot.viewer(uid, fresh_load) == after_block
    assert await redis_client.exists(viewer_key(uid)) == 1

    async def must_not_load(_user):
        raise AssertionError("served from the cache")

    assert await hot.viewer(uid, must_not_load) == after_block
    await hot.invalidate_viewers([uid])
    assert await redis_client.exists(viewer_key(uid)) == 0, "a change drops the cached viewer"


async def test_a_process_reuses_a_decoded_viewer_only_while_redis_holds_the_same_one(redis_client):
    hot = HotCache(redis_client)
    uid, a, b = _id(), _id(), _id()
    first = Viewer(uid, frozenset({a}), frozenset(), frozenset())
    second = Viewer(uid, frozenset({a, b}), frozenset(), frozenset({b}))

    async def must_not_load(_user):
        raise AssertionError("served from the cache")

    await redis_client.set(viewer_key(uid), encode_viewer(first))
    got = await hot.viewer(uid, must_not_load)
    assert got == first and await hot.viewer(uid, must_not_load) is got, "decoded once"
    await redis_client.set(viewer_key(uid), encode_viewer(second))  # what a refill after a change does
    assert await hot.viewer(uid, must_not_load) == second


async def test_an_api_process_keeps_its_copies_until_redis_announces_a_change(stack, redis_client, cass):
    """With a tracking connection, the process-local copies are read from Redis once and dropped
    as soon as an agent's write changes the key: a delete, a profile change, new counts. The local
    TTL (10 min) is far longer than the bounded waits below, so only the announcements explain them."""
    mux = Multiplexed(stack.redis_url, tracking=True)
    hot = HotCache(redis_client, mux)
    views = CachedReads(cass, hot)
    assert views._tweets.ttl_s == TRACKED_LOCAL_TTL_S > 10
    tweet, user = _tweet(_id(), author=_id()), User(_id(), "before", "B", "", False, None, 1)
    reads: list[tuple] = []
    tracked = mux.call_tracked

    async def counted(*args):
        reads.append(args)
        return await tracked(*args)

    mux.call_tracked = counted  # type: ignore[method-assign]

    async def until(probe, done, what: str) -> None:
        async with asyncio.timeout(10):
            while not done(await probe()):
                await asyncio.sleep(0.02)

    try:
        await hot.put_tweets([tweet])
        await hot.put_users([user])
        await hot.put_counts({tweet.tweet_id: Counts(values={"likes": 1}, offset=5)})
        assert await views.get_tweets([tweet.tweet_id]) == {tweet.tweet_id: tweet}
        assert (await views.get_users([user.user_id]))[user.user_id].handle == "before"
        assert (await views.get_counts([tweet.tweet_id]))[tweet.tweet_id].get("likes") == 1
        n = len(reads)
        assert await views.get_tweets([tweet.tweet_id]) == {tweet.tweet_id: tweet}
        await views.get_users([user.user_id])
        await views.get_counts([tweet.tweet_id])
        assert len(reads) == n, "served from the process, not Redis"

        await hot.put_counts({tweet.tweet_id: Counts(values={"likes": 2}, offset=6)})
        await until(lambda: views.get_counts([tweet.tweet_id]), lambda c: c[tweet.tweet_id].get("likes") == 2,
                    "new counts")
        await hot.put_users([User(user.user_id, "after", "A", "", False, None, 1)])
        await until(lambda: views.get_users([user.user_id]), lambda u: u[user.user_id].handle == "after",
                    "the profile change")
        await hot.tombstone_tweets([tweet.tweet_id])
        await until(lambda: views.get_tweets([tweet.tweet_id]), lambda t: t == {}, "the delete")
    finally:
        await mux.aclose()
