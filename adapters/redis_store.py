"""Home timelines in Redis: capped sorted sets that are either complete or absent.

    tl:{user_id}   ZSET  member = tweet id (decimal)   score = tweet's epoch ms (exact in a double)
                   plus the sentinel member "-" at score 0, written when the timeline is built.

A timeline key exists only once it was built from Cassandra (rebuild) and then holds the
sentinel; fan-out appends only to timelines that exist (one Lua call per reader, pipelined), so a
push can never create a partial timeline that a reader would mistake for a full one. A missing key
(never read, evicted, FLUSHALL) is rebuilt on the next read. Score = ms, not the snowflake: a
double holds integers only up to 2^53 and snowflakes are 63 bits (DESIGN.md decision 7).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from pipeline import timeline
from pipeline.snowflake import timestamp_ms

SENTINEL = "-"

# KEYS[1] timeline; ARGV[1] cap; then score/member pairs. Appends and trims only if built.
_PUSH_IF_BUILT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 2, #ARGV, 2 do redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('ZREMRANGEBYRANK', KEYS[1], 1, -(tonumber(ARGV[1]) + 1))
return 1
"""


# Connections per process: enough for a busy event loop; beyond it requests wait for a free one
# (up to POOL_TIMEOUT_S) instead of failing with "Too many connections".
POOL_SIZE = 64
POOL_TIMEOUT_S = 5


def connect(url: str) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=POOL_SIZE, timeout=POOL_TIMEOUT_S, decode_responses=True)
    return aioredis.Redis(connection_pool=pool)


# KEYS = many readers' timelines; ARGV[1] cap, ARGV[2] score, ARGV[3] member. One call per page of
# followers instead of one per follower: redis-py spends ~100 us of CPU per command, which made it
# the fan-out bottleneck (bench/fanout.py). Single-node Redis; on a cluster, group keys by slot.
_PUSH_ONE_TO_MANY = """
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('ZADD', key, ARGV[2], ARGV[3])
    redis.call('ZREMRANGEBYRANK', key, 1, -(tonumber(ARGV[1]) + 1))
    n = n + 1
  end
end
return n
"""
# KEYS[1] active readers, KEYS[2] the reader's timeline, KEYS[3] celebrity set, KEYS[4] cached
# viewer, KEYS[5] its generation; ARGV reader, now (s), max score, min score, count, timeline TTL.
# A home read in one command: redis-py spends more CPU packing and parsing a command than the API
# spends on anything else per read, so six commands in a pipeline cost several times this one.
_HOME_READ = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local exists = redis.call('EXISTS', KEYS[2])
local page = {}
if exists == 1 then
  page = redis.call('ZREVRANGEBYSCORE', KEYS[2], ARGV[3], ARGV[4], 'LIMIT', 0, tonumber(ARGV[5]))
  redis.call('EXPIRE', KEYS[2], ARGV[6])
end
return {exists, page, redis.call('SMEMBERS', KEYS[3]), redis.call('GET', KEYS[4]), redis.call('GET', KEYS[5])}
"""

# KEYS = sorted sets of this shape (authors' recent entries); ARGV max score, min score, count.
# Per key: {} if not built, else {size, members}.
_READ_PAGES = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 0 then
    out[i] = {}
  else
    out[i] = {redis.call('ZCARD', key), redis.call('ZREVRANGEBYSCORE', key, ARGV[1], ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))}
  end
end
return out
"""

# Keys per call: keeps one script run short (Redis runs scripts one at a time).
KEYS_PER_CALL = 1000


def timeline_key(user_id: int) -> str:
    return f"tl:{user_id}"


def recent_key(author_id: int) -> str:
    """An author's own recent entries (built only when a reader pulls them: celebrities)."""
    return f"ur:{author_id}"


class TimelineCache:
    def __init__(self, client: aioredis.Redis, cap: int) -> None:
        self.redis = client
        self.cap = cap
        self._push = client.register_script(_PUSH_IF_BUILT)
        self._push_many = client.register_script(_PUSH_ONE_TO_MANY)
        self._home_read = client.register_script(_HOME_READ)
        self._read_pages = client.register_script(_READ_PAGES)

    @classmethod
    def from_url(cls, url: str, cap: int) -> TimelineCache:
        return cls(connect(url), cap)

    async def close(self) -> None:
        await self.redis.aclose()

    async def push(self, entries: Iterable[tuple[int, int]]) -> int:
        """Append (reader, tweet id) entries to built timelines; returns how many timelines took them."""
        by_reader: dict[int, list[int]] = defaultdict(list)
        for reader, tweet_id in entries:
            by_reader[reader].append(tweet_id)
        if not by_reader:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for reader, tweet_ids in by_reader.items():
            args: list[int | str] = [self.cap]
            for tweet_id in tweet_ids:
                args += [timestamp_ms(tweet_id), str(tweet_id)]
            await self._push(keys=[timeline_key(reader)], args=args, client=pipe)
        results = await pipe.execute()
        return sum(int(r) for r in results)

    async def push_to_readers(self, readers: list[int], entry_id: int, author: int | None = None) -> int:
        """Append one entry to many readers' built timelines (and to its author's recent entries,
        if given); returns how many keys took it."""
        keys = [timeline_key(r) for r in readers]
        if author is not None:
            keys.append(recent_key(author))
        if not keys:
            return 0
        args: list[int | str] = [self.cap, timestamp_ms(entry_id), str(entry_id)]
        if len(keys) <= KEYS_PER_CALL:
            return int(await self._push_many(keys=keys, args=args))
        pipe = self.redis.pipeline(transaction=False)
        for i in range(0, len(keys), KEYS_PER_CALL):
            await self._push_many(keys=keys[i:i + KEYS_PER_CALL], args=args, client=pipe)
        return sum(int(n) for n in await pipe.execute())

    async def remove(self, entries: Iterable[tuple[int, int]], author: int | None = None) -> None:
        """Take (reader, tweet id) entries out of timelines (deleted tweets, unfollows), and out of
        the author's recent entries if given."""
        pipe = self.redis.pipeline(transaction=False)
        count = 0
        for reader, tweet_id in entries:
            pipe.zrem(timeline_key(reader), str(tweet_id))
            if author is not None:
                pipe.zrem(recent_key(author), str(tweet_id))
            count += 1
        if count:
            await pipe.execute()

    async def fill(self, reader: int, tweet_ids: Iterable[int], key: str | None = None) -> None:
        """Build (or merge into) a reader's timeline: the sentinel plus the given entries, capped.
        With `key`, the same for another key of this shape (an author's recent entries)."""
        mapping: dict[str, float] = {SENTINEL: 0}
        mapping.update({str(t): timestamp_ms(t) for t in tweet_ids})
        key = key or timeline_key(reader)
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(key, mapping)
        pipe.zremrangebyrank(key, 1, -(self.cap + 1))  # keep rank 0 (sentinel) and the top cap
        await pipe.execute()

    async def page(self, reader: int, limit: int, max_id: int | None = None,
                   since_id: int | None = None) -> list[int] | None:
        """Newest-first ids with since_id < id <= max_id, or None when the timeline isn't built."""
        pipe = self.redis.pipeline(transaction=False)
        self.queue_page(pipe, reader, limit, max_id, since_id)
        exists, members = await pipe.execute()
        return self.page_result(exists, members, limit, max_id, since_id)

    async def home_read(self, reader: int, now_s: float, limit: int, max_id: int | None, since_id: int | None,
                        ttl_s: int, celebs_key: str, active_key: str,
                        viewer_keys: list[str]) -> tuple[list[int] | None, set[str], str | None, str | None]:
        """Mark the reader active, read a page of their timeline and extend its life, and fetch the
        celebrity set and the cached viewer, in one command: (page or None if not built,
        celebrity set members, viewer, viewer generation)."""
        hi, lo = _score_range(max_id, since_id)
        exists, members, celebs, viewer, generation = await self._home_read(
            keys=[active_key, timeline_key(reader), celebs_key, *viewer_keys],
            args=[str(reader), now_s, hi, lo, limit * 2 + 16, ttl_s])
        return self.page_result(exists, members, limit, max_id, since_id), set(celebs), viewer, generation

    async def recent_pages(self, authors: list[int], limit: int, max_id: int | None,
                           since_id: int | None) -> list[tuple[list[int], int] | None]:
        """Pages of several authors' recent-entry sets in one command: (ids, set size) or None
        when a set is not built."""
        hi, lo = _score_range(max_id, since_id)
        replies = await self._read_pages(keys=[recent_key(a) for a in authors], args=[hi, lo, limit * 2 + 16])
        out: list[tuple[list[int], int] | None] = []
        for reply in replies:
            if not reply:
                out.append(None)
                continue
            size, members = reply
            ids = self.page_result(1, members, limit, max_id, since_id)
            out.append((ids or [], int(size) - 1))
        return out

    @staticmethod
    def queue_page(pipe: Pipeline, reader: int, limit: int, max_id: int | None, since_id: int | None,
                   key: str | None = None) -> None:
        """Queue a page read on a pipeline (two replies, for page_result), to share a round trip."""
        key = key or timeline_key(reader)
        hi, lo = _score_range(max_id, since_id)
        pipe.exists(key)
        # Entries in the boundary milliseconds are fetched too and cut by id below; +limit*2
        # leaves room for them without a second round trip in all but pathological cases.
        pipe.zrevrangebyscore(key, hi, lo, start=0, num=limit * 2 + 16)

    @staticmethod
    def page_result(exists: int, members: list[str], limit: int, max_id: int | None,
                    since_id: int | None) -> list[int] | None:
        if not exists:
            return None
        ids = sorted((int(m) for m in members if m != SENTINEL), reverse=True)
        return timeline.page(ids, limit, max_id, since_id)


def _score_range(max_id: int | None, since_id: int | None) -> tuple[str, str]:
    """ZREVRANGEBYSCORE bounds for since_id < id <= max_id (by millisecond; cut by id after)."""
    hi = f"{timestamp_ms(max_id)}" if max_id is not None else "+inf"
    lo = f"{timestamp_ms(since_id)}" if since_id is not None else "(0"
    return hi, lo
