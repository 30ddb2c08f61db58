"""Reading a home timeline: the pushed entries in Redis (rebuilt from Cassandra in the same request
when missing) merged with the recent tweets of followed celebrities, whose tweets are never pushed."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping, Sequence

from adapters.cassandra_store import CassandraStore
from adapters.graph_cache import ACTIVE, CELEBS, CELEBS_VERSION, SENTINEL, GraphCache
from adapters.hot_cache import CachedReads
from adapters.redis_store import RateCheck, RecentPage, TimelineCache, recent_key, timeline_key
from pipeline import timeline
from pipeline.fanout import Policy
from pipeline.visibility import Viewer

# A rebuild reads one small partition per followee; this many in flight at once.
REBUILD_CONCURRENCY = 32
# A rebuild lock outlives any sane rebuild but frees itself if its holder dies.
LOCK_TTL_S = 10
# Newest entries per author read again after a list is built (see build_recent).
RACE_REREAD = 20
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
        self._celebrities: set[int] = set()  # the celebrity set as this process last read it
        self._celebs_version: str | None = None  # and its version then

    async def page(self, reader: int, views: CachedReads, limit: int, max_id: int | None,
                   since_id: int | None, viewer: Viewer | None = None, rate: RateCheck | None = None,
                   on_counts: Callable[[list[int]], None] | None = None) -> tuple[Viewer, list[int]]:
        """The reader's viewer and newest-first tweet ids (not yet filtered for blocks, mutes,
        deletes). Pass the viewer back in for the next page of the same request. With `rate`, the
        request is counted against its limits in the same command and `on_counts` gets the
        counters (it raises to refuse the request; then nothing was read)."""
        # The followed celebrities' pages come in the same command when this process can guess
        # who they are: from the celebrity set it saw last and the reader's viewer as it last
        # decoded it. The guess is checked below against what the command returned; a celebrity
        # it missed costs the round trip it saves when right, one it wrongly included is unused.
        known = viewer or views.hot.last_decoded_viewer(reader)
        guess = sorted((self._celebrities & known.following) - {reader}) if known is not None else []
        read = await self.cache.home_read(
            reader, time.time(), limit, max_id, since_id, self.policy.activity_window_s, (CELEBS, CELEBS_VERSION),
            ACTIVE, views.hot.viewer_keys(reader), rate, recent_of=guess, celebs_version=self._celebs_version)
        if on_counts is not None:
            on_counts(read.counts)
        pushed, cached_viewer, generation = read.page, read.viewer, read.generation
        if viewer is None:
            viewer = await views.hot.viewer_from(reader, [cached_viewer, generation], views.cass.viewer)
        following = viewer.following
        if pushed is None:
            pushed = timeline.page(await self.rebuild(reader), limit, max_id, since_id)
        if read.celebs is not None:  # changed since this process last read it (or never read)
            self._celebrities = await self.graph.celebrities(self.cass.celebrities, read.celebs)
            # Kept under the version read with the members; a set this request rebuilt from
            # Cassandra got a new version, read (with the set) by the next request.
            self._celebs_version = read.celebs_version if SENTINEL in read.celebs else None
        celebrities = self._celebrities
        pulled = sorted((celebrities & following) - {reader})
        lists = await self.pulled_pages(pulled, limit, max_id, since_id, read.recent) if pulled else []
        return viewer, timeline.merge_newest([pushed, *lists], limit)

    async def pulled_pages(self, authors: list[int], limit: int, max_id: int | None, since_id: int | None,
                           read: Mapping[int, RecentPage]) -> list[list[int]]:
        """The followed celebrities' entries for this page, from their recent lists in Redis:
        those already `read` with the home page, the others in one round trip for all of them;
        Cassandra for a list not built yet, or a page older than what a full (capped) list holds."""
        missing = [a for a in authors if a not in read]
        fetched = dict(zip(missing, await self.cache.recent_pages(missing, limit, max_id, since_id))) if missing else {}
        out: list[list[int]] = []
        for author in authors:
            found = read[author] if author in read else fetched[author]
            if found is None:
                ids = timeline.page(await self.build_recent(author), limit, max_id, since_id)
                size = 0
            else:
                ids, size = found
            if len(ids) < limit and size >= self.cache.cap:  # trimmed: older entries only in Cassandra
                ids = timeline.page(await self.cass.recent_tweet_ids(author, limit, max_id), limit, None, since_id)
            out.append(ids)
        return out

    async def build_recent(self, author: int) -> list[int]:
        """Build an author's recent list from Cassandra. Fan-out appends only to built lists, so
        an entry saved after the first read whose push found no list yet is picked up by the second
        read, which runs after the list exists (the entry is saved before it is pushed)."""
        key = recent_key(author)
        ids = await self.cass.recent_tweet_ids(author, self.cache.cap)
        await self.cache.fill(author, ids, key=key)
        again = await self.cass.recent_tweet_ids(author, RACE_REREAD)
        await self.cache.fill(author, again, key=key)
        return timeline.merge_newest([ids, again], self.cache.cap)

    async def rebuild(self, reader: int) -> list[int]:
        """Merge the followees' (and the reader's own) recent tweets; one rebuild per reader at a time."""
        lock = f"{timeline_key(reader)}:lock"
        token = secrets.token_hex(8)
        if not await self.cache.redis.set(lock, token, nx=True, ex=LOCK_TTL_S):
            waited = await self._wait_for_other_rebuild(reader)
            if waited is not None:
                return waited
            return await self._merge(reader, self.per_author)  # the other rebuild is stuck: serve, don't write
        try:
            # Built to live as long as the reader counts as active (the read marked them so).
            ttl = self.policy.activity_window_s
            merged = await self._merge(reader, self.per_author)
            await self.cache.fill(reader, merged, ttl_s=ttl)
            # Fan-out skipped this timeline while it did not exist: an entry saved after the first
            # read and pushed before the fill is found by this second, shallower read.
            again = await self._merge(reader, RACE_REREAD)
            await self.cache.fill(reader, again, ttl_s=ttl)
            return timeline.merge_newest([merged, again], self.cache.cap)
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

    async def _merge(self, reader: int, per_author: int) -> list[int]:
        authors = [reader, *await self.cass.following(reader)]
        sem = asyncio.Semaphore(REBUILD_CONCURRENCY)

        async def recent(author: int) -> Sequence[int]:
            async with sem:
                return await self.cass.recent_tweet_ids(author, per_author)

        lists = await asyncio.gather(*(recent(a) for a in authors))
        return timeline.merge_newest(lists, self.cache.cap)
