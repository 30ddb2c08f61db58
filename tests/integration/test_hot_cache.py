"""The read caches on the real Redis: a reader's stale fill never outlives an agent's change.

Each test plays the interleaving that would go wrong with a naive cache-aside: the reader loads the
old row from Cassandra, the agent writes the new row and updates the cache, then the reader's fill
arrives.
"""

import asyncio
import secrets

from adapters.hot_cache import HotCache, TOMBSTONE, encode_viewer, tweet_key, user_key, viewer_key
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
