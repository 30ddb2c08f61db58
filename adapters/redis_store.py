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
# Keys per call: keeps one script run short (Redis runs scripts one at a time).
KEYS_PER_CALL = 1000


def timeline_key(user_id: int) -> str:
    return f"tl:{user_id}"


class TimelineCache:
    def __init__(self, client: aioredis.Redis, cap: int) -> None:
        self.redis = client
        self.cap = cap
        self._push = client.register_script(_PUSH_IF_BUILT)
        self._push_many = client.register_script(_PUSH_ONE_TO_MANY)

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

    async def push_to_readers(self, readers: list[int], entry_id: int) -> int:
        """Append one entry to many readers' built timelines; returns how many took it."""
        if not readers:
            return 0
        args = [self.cap, timestamp_ms(entry_id), str(entry_id)]
        if len(readers) <= KEYS_PER_CALL:
            return int(await self._push_many(keys=[timeline_key(r) for r in readers], args=args))
        pipe = self.redis.pipeline(transaction=False)
        for i in range(0, len(readers), KEYS_PER_CALL):
            chunk = readers[i:i + KEYS_PER_CALL]
            await self._push_many(keys=[timeline_key(r) for r in chunk], args=args, client=pipe)
        return sum(int(n) for n in await pipe.execute())

    async def remove(self, entries: Iterable[tuple[int, int]]) -> None:
        """Take (reader, tweet id) entries out of timelines (deleted tweets, unfollows)."""
        pipe = self.redis.pipeline(transaction=False)
        count = 0
        for reader, tweet_id in entries:
            pipe.zrem(timeline_key(reader), str(tweet_id))
            count += 1
        if count:
            await pipe.execute()

    async def fill(self, reader: int, tweet_ids: Iterable[int]) -> None:
        """Build (or merge into) a reader's timeline: the sentinel plus the given entries, capped."""
        mapping: dict[str, float] = {SENTINEL: 0}
        mapping.update({str(t): timestamp_ms(t) for t in tweet_ids})
        key = timeline_key(reader)
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(key, mapping)
        pipe.zremrangebyrank(key, 1, -(self.cap + 1))  # keep rank 0 (sentinel) and the top cap
        await pipe.execute()

    async def page(self, reader: int, limit: int, max_id: int | None = None,
                   since_id: int | None = None) -> list[int] | None:
        """Newest-first ids with since_id < id <= max_id, or None when the timeline isn't built."""
        key = timeline_key(reader)
        hi = f"{timestamp_ms(max_id)}" if max_id is not None else "+inf"
        lo = f"{timestamp_ms(since_id)}" if since_id is not None else "(0"
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(key)
        # Entries in the boundary milliseconds are fetched too and cut by id below; +limit*2
        # leaves room for them without a second round trip in all but pathological cases.
        pipe.zrevrangebyscore(key, hi, lo, start=0, num=limit * 2 + 16)
        exists, members = await pipe.execute()
        if not exists:
            return None
        ids = sorted((int(m) for m in members if m != SENTINEL), reverse=True)
        return timeline.page(ids, limit, max_id, since_id)
