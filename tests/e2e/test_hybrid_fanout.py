"""Hybrid fan-out through the running pipeline (test bands: push to all below 3 followers, to active
readers below 5, pull at 5 and above), exact follower counts, and block/mute filtering."""

import secrets
import time

import numpy as np

from adapters.graph_cache import ACTIVE, GraphCache
from adapters.redis_store import TimelineCache, timeline_key
from api.auth import mint_token
from tests.e2e.helpers import event, eventually, in_list, list_ids, new_id, user


async def home(http, settings, uid, **params):
    async with http.get("/v1/timelines/home", params=params,
                        headers={"Authorization": f"Bearer {mint_token(settings, uid)}"}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


def running_window(settings):
    from pipeline.topology import load_topology

    return load_topology(settings.topology_path).tunables.fanout.activity_window_s


async def register(producer, cass, n):
    ids = [new_id() for _ in range(n)]
    for uid in ids:
        await producer.send_event(user(uid, f"f{secrets.token_hex(5)}"))
    await eventually(lambda: cass.existing_users(ids), lambda found: len(found) == n, what="users")
    return ids


async def follow(producer, follower, followee):
    await producer.send_event(event("follow.created", follower, {"followee_id": str(followee)}))


async def test_small_middle_and_celebrity_authors(running, producer, http, cass, redis_client):
    reader, small, middle, celeb, idle = await register(producer, cass, 5)
    crowd = await register(producer, cass, 6)
    for author, extra in ((small, []), (middle, crowd[:2]), (celeb, crowd)):
        for f in [reader, idle, *extra]:
            await follow(producer, f, author)
    # The same follow twice (a replay from a producer) and an unfollow: counts stay exact.
    await follow(producer, crowd[0], celeb)
    await producer.send_event(event("follow.removed", crowd[5], {"followee_id": str(celeb)}))
    expected = {small: 2, middle: 4, celeb: 7}

    async def state():
        # An intermediate count can equal the final one (7 of the 8 follows before the unfollow),
        # so wait for the final edges too: the unfollow is the last event.
        counts = await cass.follower_counts(expected)
        rows = {a: len([f async for page in cass.follower_pages(a, 100) for f in page]) for a in expected}
        return {u: x.followers for u, x in counts.items()}, rows, crowd[5] in [
            f async for page in cass.follower_pages(celeb, 100) for f in page]

    counts, rows, unfollowed_still_there = await eventually(
        state, lambda s: s[0] == expected and s[1] == expected and not s[2], what="final follower counts")
    assert counts == rows == expected
    # The fan-out agent picks its band from the Redis copy, written just after Cassandra's.
    await eventually(lambda: redis_client.mget([f"fc:{u}" for u in expected]),
                     lambda v: v == [str(n) for n in expected.values()], what="cached follower counts")

    await home(http, running, reader)                     # reader: built and active
    await home(http, running, celeb)                      # the celebrity reads too
    await redis_client.delete(timeline_key(idle))
    # The last-read set as a long-running system has it: complete (repaired after any earlier
    # test's flush). Then idle: built, but last read before the window (what such a reader has
    # until the timeline expires; host clocks differ). crowd[0] follows the middle account and has
    # no timeline: not in the set, so left out, and no push may create one.
    graph = GraphCache(redis_client)
    assert await graph.repair_active(time.time())
    await TimelineCache(redis_client, 800).fill(idle, [])
    await redis_client.zadd(ACTIVE, {str(idle): time.time() - running_window(running) - 60})

    ids = {}
    for name, author in (("small", small), ("middle", middle), ("celeb", celeb)):
        ids[name] = new_id()
        await producer.send_event(event("tweet.created", author, {"tweet_id": str(ids[name]), "text": name}))
    body = await eventually(lambda: home(http, running, reader),
                            lambda b: {t["id"] for t in b["data"]} >= set(ids.values()), what="all three tweets")
    assert [t["text"] for t in body["data"][:3]] == ["celeb", "middle", "small"], "newest first"

    async def in_timeline(uid, name):
        return await in_list(redis_client, timeline_key(uid), ids[name])

    assert await in_timeline(reader, "small") and await in_timeline(reader, "middle")
    assert await in_timeline(idle, "small"), "below the first band every built timeline gets it"
    assert not await in_timeline(idle, "middle"), "the middle band skips readers who are not active"
    assert not await redis_client.exists(timeline_key(crowd[0])), "a push creates no timeline"
    for f in [reader, idle, *crowd]:
        assert not await in_timeline(f, "celeb"), "a celebrity's tweet is written to no follower timeline"
    assert await in_list(redis_client, timeline_key(celeb), ids["celeb"]), "just its author's own timeline: O(1) writes"

    # The last-read set evicted (and started again by a read): it could now leave out a reader
    # with a built timeline, so the middle band pushes to every built timeline until the worker
    # has repaired the set, which then holds idle (built) and the reader.
    await redis_client.delete(ACTIVE)
    await home(http, running, celeb)
    ids["middle2"] = new_id()
    await producer.send_event(event("tweet.created", middle, {"tweet_id": str(ids["middle2"]), "text": "middle2"}))
    await eventually(lambda: in_timeline(reader, "middle2"), bool, what="the second middle-band tweet")
    assert await in_timeline(idle, "middle2"), "an incomplete last-read set filters nobody out"
    complete, seen = await eventually(lambda: graph.last_reads([idle, reader]), lambda r: r[0], what="the repair")
    assert not np.isnan(seen).any(), "the repair added the readers with built timelines"

    # Losing Redis loses nothing: the celebrity set and the timeline are rebuilt from Cassandra.
    await redis_client.flushdb()
    body = await home(http, running, reader)
    assert [t["text"] for t in body["data"][:4]] == ["middle2", "celeb", "middle", "small"]
    # Rebuilt with the activity window as its life, set with the build (a built timeline never
    # outlives its reader's entry in the last-read set).
    assert 0 < await redis_client.ttl(timeline_key(reader)) <= running_window(running)


async def test_mutes_and_blocks_hide_authors_both_ways(running, producer, http, cass):
    reader, muted, blocker, friend = await register(producer, cass, 4)
    for author in (muted, blocker, friend):
        await follow(producer, reader, author)
    await eventually(lambda: cass.following(reader), lambda f: len(f) == 3, what="follows")
    texts = {}
    for author, text in ((muted, "muted"), (blocker, "blocker"), (friend, "friend")):
        await producer.send_event(event("tweet.created", author, {"tweet_id": str(new_id()), "text": text}))
        texts[author] = text
    await eventually(lambda: home(http, running, reader), lambda b: len(b["data"]) == 3, what="three tweets")

    await producer.send_event(event("mute.created", reader, {"muted_id": str(muted)}))
    await producer.send_event(event("block.created", blocker, {"blocked_id": str(reader)}))  # blocks the reader
    body = await eventually(lambda: home(http, running, reader),
                            lambda b: [t["text"] for t in b["data"]] == ["friend"], what="hidden authors")
    assert body["meta"]["count"] == 1
    await producer.send_event(event("mute.removed", reader, {"muted_id": str(muted)}))
    await eventually(lambda: home(http, running, reader),
                     lambda b: sorted(t["text"] for t in b["data"]) == ["friend", "muted"], what="unmuted")


async def test_unfollow_removes_and_follow_backfills_the_cached_timeline(running, producer, http, cass, redis_client):
    reader, author = await register(producer, cass, 2)
    tweets = [new_id() for _ in range(3)]
    for t in tweets:
        await producer.send_event(event("tweet.created", author, {"tweet_id": str(t), "text": "x"}))
    await eventually(lambda: cass.recent_tweet_ids(author, 10), lambda ids: len(ids) == 3, what="tweets")
    await home(http, running, reader)  # built, empty: the reader follows nobody yet

    async def cached():
        return await list_ids(redis_client, timeline_key(reader))

    await follow(producer, reader, author)
    await eventually(cached, lambda ids: ids == set(tweets), what="backfilled on follow")
    await producer.send_event(event("follow.removed", reader, {"followee_id": str(author)}))
    await eventually(cached, lambda ids: ids == set(), what="removed on unfollow")
    body = await home(http, running, reader)
    assert body["data"] == []


async def test_follows_reach_the_fanout_workers_cached_follower_lists(running, producer, http, cass, redis_client):
    """The fan-out worker keeps follower lists in memory (pipeline/fanout.FollowerLists): a follow
    or unfollow after the author's list was cached changes who the author's next tweet is pushed
    to, also after Redis lost the lists' generations."""
    from adapters.redis_store import TimelineCache

    author, first, second = await register(producer, cass, 3)
    timelines, graph = TimelineCache(redis_client, 800), GraphCache(redis_client)

    async def build(reader):
        """What a home read does: the timeline built, the reader in the last-read set."""
        await timelines.fill(reader, [])
        await graph.touch_active(reader, time.time())

    for reader in (author, first, second):
        await build(reader)

    async def pushed(reader, tweet):
        return await in_list(redis_client, timeline_key(reader), tweet)

    async def tweet(text):
        tweet_id = new_id()
        await producer.send_event(event("tweet.created", author, {"tweet_id": str(tweet_id), "text": text}))
        # Its author's own timeline takes it in the same write as the followers'.
        await eventually(lambda: pushed(author, tweet_id), bool, what=f"{text} delivered")
        return tweet_id

    await follow(producer, first, author)
    await eventually(lambda: cass.follower_counts([author]), lambda c: author in c and c[author].followers == 1,
                     what="first follow")
    t1 = await tweet("one follower")  # the worker now holds [first]
    assert await pushed(first, t1) and not await pushed(second, t1)

    await follow(producer, second, author)
    await eventually(lambda: pushed(second, t1), bool, what="backfill of the new follower")
    t2 = await tweet("two followers")
    assert await pushed(first, t2) and await pushed(second, t2), "the cached list saw the follow"

    await producer.send_event(event("follow.removed", first, {"followee_id": str(author)}))
    await eventually(lambda: pushed(first, t2), lambda there: not there, what="removed on unfollow")
    t3 = await tweet("after the unfollow")
    assert await pushed(second, t3) and not await pushed(first, t3), "the cached list saw the unfollow"

    # Redis loses the generations (and everything else): no list cached before is trusted.
    await redis_client.flushdb()
    for reader in (author, first, second):
        await build(reader)
    await follow(producer, first, author)
    await eventually(lambda: pushed(first, t3), bool, what="backfill after the flush")
    t4 = await tweet("after the flush")
    assert await pushed(first, t4) and await pushed(second, t4)
