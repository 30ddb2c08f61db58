"""Reading a home timeline: the pushed entries in Redis (rebuilt from Cassandra in the same request
when missing) merged with the recent tweets of followed celebrities, whose tweets are never pushed."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Sequence

from adapters.cassandra_store import CassandraStore
from adapters.graph_cache import GraphCache
from adapters.redis_store import TimelineCache, timeline_key
from pipeline import timeline
from pipeline.fanout import Policy

# A rebuild reads one small partition per followee; this many in flight at once.
REBUILD_CONCURRENCY = 32
# A rebuild lock outlives any sane rebuild but frees itself if its holder dies.
LOCK_TTL_S = 10
# How long a request waits for another request's rebuild before building without the lock.
LOCK_WAIT_S = 2.0


class HomeTimelines:
    def __init__(self, cass: CassandraStore, cache: TimelineCache, graph: GraphCache, per_author: int,
                 policy: Policy) -> None:
        self.cass = cass
        self.cache = cache
        self.graph = graph
        self.per_author = per_author
        self.policy = policy

    async def page(self, reader: int, following: set[int], limit: int, max_id: int | None,
                   since_id: int | None) -> list[int]:
        """Newest-first tweet ids for the reader (not yet filtered for blocks, mutes, deletes)."""
        await self.graph.touch_active(reader, time.time())
        pushed = await self.cache.page(reader, limit, max_id, since_id)
        if pushed is None:
            pushed = timeline.page(await self.rebuild(reader), limit, max_id, since_id)
        # An unread timeline expires with the activity window; the next read rebuilds it.
        await self.cache.redis.expire(timeline_key(reader), self.policy.activity_window_s)
        celebrities = await self.graph.celebrities(self.cass.celebrities)
        pulled = sorted((celebrities & following) - {reader})
        lists = await asyncio.gather(*(self.cass.recent_tweet_ids(a, limit, max_id) for a in pulled))
        return timeline.merge_newest([pushed, *(timeline.page(ids, limit, max_id, since_id) for ids in lists)], limit)

    async def rebuild(self, reader: int) -> list[int]:
        """Merge the followees' (and the reader's own) recent tweets; one rebuild per reader at a time."""
        lock = f"{timeline_key(reader)}:lock"
        token = secrets.token_hex(8)
        if not await self.cache.redis.set(lock, token, nx=True, ex=LOCK_TTL_S):
            waited = await self._wait_for_other_rebuild(reader)
            if waited is not None:
                return waited
            return await self._merge(reader)  # the other rebuild is stuck: serve, don't write
        try:
            merged = await self._merge(reader)
            await self.cache.fill(reader, merged)
            return merged
        finally:
            if await self.cache.redis.get(lock) == token:
                await self.cache.redis.delete(lock)

    async def _wait_for_other_rebuild(self, reader: int) -> list[int] | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LOCK_WAIT_S
        while loop.time() < deadline:
            await asyncio.sleep(0.05)
            ids = await self.cache.page(reader, self.cache.cap, None, None)
            if ids is not None:
                return ids
        return None

    async def _merge(self, reader: int) -> list[int]:
        authors = [reader, *await self.cass.following(reader)]
        sem = asyncio.Semaphore(REBUILD_CONCURRENCY)

        async def recent(author: int) -> Sequence[int]:
            async with sem:
                return await self.cass.recent_tweet_ids(author, self.per_author)

        lists = await asyncio.gather(*(recent(a) for a in authors))
        return timeline.merge_newest(lists, self.cache.cap)
