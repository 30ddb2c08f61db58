"""Timelines as Redis lists (adapters/redis_store.py), in the real Redis: the cap, reads of the
tail against entries appended out of order or twice, and merges that pushes overtake."""

import secrets

import redis

import adapters.redis_store as rs
from adapters.redis_store import SENTINEL, TimelineCache, recent_key, timeline_key
from pipeline import timeline
from pipeline.snowflake import STARLING_EPOCH_MS, Snowflake

SF = Snowflake(21)


def _uid():
    return 10**15 + secrets.randbelow(10**9)


def _ids(n):
    """n distinct ids, oldest first."""
    return [SF.next_id(STARLING_EPOCH_MS + 10**9 + i) for i in range(n)]


async def test_an_append_past_the_cap_and_its_slack_trims_to_the_newest_cap(redis_client, monkeypatch):
    monkeypatch.setattr(rs, "TRIM_SLACK", 2)
    cache = TimelineCache(redis_client, cap=5)
    reader = _uid()
    await cache.fill(reader, [])
    tweets = _ids(12)
    for t in tweets:
        assert await cache.push([(reader, t)]) == 1
        assert await redis_client.llen(timeline_key(reader)) <= 5 + 2, "never more than cap + slack"
    assert (await cache.page(reader, 5)) == sorted(tweets, reverse=True)[:5], "the newest cap are kept"
    held = await cache.page(reader, 100)
    assert held == sorted(tweets, reverse=True)[:len(held)] and 5 <= len(held) <= 7


async def test_a_fill_keeps_the_newest_cap_sorted_and_the_sentinel(redis_client):
    cache = TimelineCache(redis_client, cap=4)
    reader = _uid()
    tweets = _ids(7)
    await cache.fill(reader, reversed(tweets), ttl_s=600)
    assert await redis_client.lrange(timeline_key(reader), 0, -1) == [SENTINEL, *map(str, tweets[-4:])]
    assert 0 < await redis_client.ttl(timeline_key(reader)) <= 600


async def test_the_first_page_is_exact_when_batches_appended_out_of_order(redis_client):
    """Concurrent batches interleave their appends; a read of the tail sorts what it takes."""
    cache = TimelineCache(redis_client, cap=800)
    reader = _uid()
    await cache.fill(reader, [])
    tweets = _ids(60)
    for lo in (40, 20, 50, 0, 30, 10):  # batches of 10, out of order
        await cache.push([(reader, t) for t in tweets[lo:lo + 10]])
    newest = sorted(tweets, reverse=True)
    read = await cache.home_read(reader, 1.0, 20, None, None, 600, ("celebs-x", "celebs-x:v"), f"active-{reader}",
                                 [f"vw-x:{reader}", f"vg-x:{reader}"])
    assert read.page == newest[:20]
    assert await cache.page(reader, 20, max_id=newest[20]) == newest[20:40]


async def test_a_tail_full_of_replayed_duplicates_is_read_whole(redis_client, monkeypatch):
    """A replay appends entries again; when the tail holds too few distinct ids for a page, the
    list is read whole and the page is still full."""
    monkeypatch.setattr(rs, "TAIL_SLACK", 4)
    cache = TimelineCache(redis_client, cap=800)
    author = _uid()
    tweets = _ids(30)
    await cache.fill(author, tweets, key=recent_key(author))
    for _ in range(10):  # the newest three replayed ten times: the tail is all duplicates
        await cache.push_lists([recent_key(author)], [3], tweets[-3:])
    ids, size = (await cache.recent_pages([author], 10, None, None))[0]
    assert ids == sorted(tweets, reverse=True)[:10]
    assert size == 1 + 30 + 30
    # Polling for what is new since an id reads the tail only when it holds it all.
    ids, _ = (await cache.recent_pages([author], 10, None, tweets[-5]))[0]
    assert ids == sorted(tweets[-4:], reverse=True)


async def test_a_merge_overtaken_by_a_push_starts_over_and_loses_nothing(stack, redis_client, monkeypatch):
    """A backfill rewrites the list sorted; an append landing between its read and its write must
    not be lost: WATCH makes the write fail, and the merge reads the list again."""
    cache = TimelineCache(redis_client, cap=800)
    reader = _uid()
    older, newer, (pushed,) = _ids(5), _ids(2), _ids(1)
    await cache.fill(reader, newer)
    other = redis.Redis.from_url(stack.redis_url, decode_responses=True)  # another client: a fan-out
    real = timeline.merged_oldest_first
    attempts = []

    def overtaken(current, ids, cap, skip):
        """Runs between the merge's read and its write; the first time, a push lands meanwhile."""
        attempts.append(list(current))
        if len(attempts) == 1:
            assert other.rpushx(timeline_key(reader), str(pushed)) == 1 + len(newer) + 1
        return real(current, ids, cap, skip)

    monkeypatch.setattr(timeline, "merged_oldest_first", overtaken)
    try:
        assert await cache.fill(reader, older, create=False)
    finally:
        other.close()
    assert len(attempts) == 2 and str(pushed) in attempts[1], "the merge started over and saw the push"
    everything = sorted({*older, *newer, pushed})
    assert await redis_client.lrange(timeline_key(reader), 0, -1) == [SENTINEL, *map(str, everything)]


async def test_a_backfill_never_builds_a_timeline_and_a_merge_keeps_its_life(redis_client):
    cache = TimelineCache(redis_client, cap=800)
    reader, built = _uid(), _uid()
    assert await cache.fill(reader, _ids(3), create=False) is False
    assert await redis_client.exists(timeline_key(reader)) == 0
    await cache.fill(built, _ids(2), ttl_s=600)
    assert await cache.fill(built, _ids(3), create=False) is True
    assert 0 < await redis_client.ttl(timeline_key(built)) <= 600, "merged without a TTL of its own: kept"
    assert len(await cache.page(built, 100)) == 5


async def test_removal_takes_every_copy_of_an_entry(redis_client):
    cache = TimelineCache(redis_client, cap=800)
    reader, author = _uid(), _uid()
    tweets = _ids(4)
    await cache.fill(reader, tweets)
    await cache.fill(author, tweets, key=recent_key(author))
    await cache.push([(reader, tweets[1])])  # a replayed append: two copies
    await cache.remove([(reader, tweets[1])], author=author)
    assert await cache.page(reader, 10) == sorted([tweets[0], *tweets[2:]], reverse=True)
    assert await cache.page(author, 10, key=recent_key(author)) == sorted([tweets[0], *tweets[2:]], reverse=True)
