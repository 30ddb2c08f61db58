"""Home timelines in Redis: capped lists of tweet ids that are either complete or absent.

    hl:{user}   LIST  tweet ids (decimal; Redis keeps each as a 64-bit integer, ~10 bytes), oldest
                      first, the newest appended at the tail; the sentinel "-" at the head when
                      the list was built, so that a built timeline with no entries exists
    al:{author} LIST  the same shape: an author's own recent entries, built only when a reader
                      pulls them (celebrities)

This is the layout Twitter's timeline cache used ("Timelines at Scale", 2012: Redis native lists,
RPUSHX so that only cached timelines are written). A key exists only once it was built from
Cassandra (fill) and then holds at least the sentinel; fan-out appends with RPUSHX, which writes
only to a list that exists, so a push can never create a partial timeline that a reader would
mistake for a full one. A missing key (never read, evicted, FLUSHALL) is rebuilt on the next read.

Why lists, not sorted sets: an append is O(1); bench/timeline_layout.py measured Redis's own time
per entry at 1.6 us against 5.5-6.2 us for a ZADD of a new member (3,000 timelines of 500), 0.5
against 2.0 us five entries per command, and 10.5 bytes per entry against 119.5 (a skiplist; 11.5
against 21.0 at 100 entries, a listpack). What a sorted set gave for free is kept so:
- Order: fan-out appends a batch's entries for one reader in id order, and batches arrive in
  about time order, so a list is in id order but for the few entries that concurrent batches
  interleave. A read takes the tail (a page plus TAIL_SLACK) and sorts it; a page with a cursor
  into the past (max_id) reads the whole list (at most cap + TRIM_SLACK ids). Merges of older
  entries (a rebuild, a follow's backfill) rewrite the list sorted (fill).
- Idempotence: a replayed push appends an id again; reads take distinct ids, so every page is
  what it was (a duplicate only takes a place under the cap until it is trimmed away).
- The cap: an append that takes a list past cap + TRIM_SLACK trims it back to its newest cap
  elements (by position, which is id order but for that interleaving).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import hiredis
import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, WatchError

from adapters import resp
from adapters.redis_mux import Commands, Pooled
from pipeline import timeline

SENTINEL = "-"

# Elements a page read takes from a list's tail beyond the page itself: room for entries that
# concurrent batches appended out of order, and for replayed duplicates.
TAIL_SLACK = 64
# A list is trimmed back to the cap once an append takes it this far past it: one LTRIM per 64
# appends instead of one per append.
TRIM_SLACK = 64
# Attempts at rewriting a list (fill) while pushes keep changing it, before appending instead.
MERGE_ATTEMPTS = 8


@dataclass(frozen=True)
class RateCheck:
    """Rate-limit counters to increment in the same command (adapters/ratelimit.RateLimiter.check)."""
    keys: list[str]
    expire_ms: int
    limits: list[int]  # one per key


# A page of an author's recent-entry list: (ids, the list's length), or None when it is not built.
RecentPage = tuple[list[int], int] | None


@dataclass(frozen=True)
class HomeRead:
    page: list[int] | None  # None: the timeline is not built (or the request is over a limit)
    celebs: set[str] | None  # the celebrity set's members; None: unchanged since the version passed in
    celebs_version: str | None  # the version of the set (None: unknown)
    viewer: str | None
    generation: str | None
    counts: list[int]  # the rate-limit counters after this request, if a RateCheck was given
    recent: dict[int, RecentPage]  # the pages of the recent-entry lists asked for, by author


# KEYS = lists (timelines, or authors' recent lists), ARGV[1] cap, ARGV[2] trim slack, then per
# key: how many ids follow, and the ids (oldest first). Appends to built lists only (RPUSHX), trims
# one that grew past cap + slack, and returns how many (list, id) pairs landed. One call carries
# many lists' appends: redis-py spends more CPU per command than Redis spends per append.
_PUSH_ENTRIES = """
local cap, slack = tonumber(ARGV[1]), tonumber(ARGV[2])
local j, took = 3, 0
for i = 1, #KEYS do
  local n = tonumber(ARGV[j])
  local size = redis.call('RPUSHX', KEYS[i], unpack(ARGV, j + 1, j + n))
  if size > 0 then
    took = took + n
    if size > cap + slack then redis.call('LTRIM', KEYS[i], -cap, -1) end
  end
  j = j + n + 1
end
return took
"""


# Connections per process: enough for a busy event loop; beyond it requests wait for a free one
# (up to POOL_TIMEOUT_S) instead of failing with "Too many connections".
POOL_SIZE = 64
POOL_TIMEOUT_S = 5


def connect(url: str) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=POOL_SIZE, timeout=POOL_TIMEOUT_S, decode_responses=True)
    return aioredis.Redis(connection_pool=pool)


# Lua, shared by the scripts below: each of KEYS[first..last] (lists of the timeline's shape:
# authors' recent entries) from element `start` to the end (0: the whole list; -n: its tail).
# Per key: {} if not built, else {length, elements}. A built list is never empty (the sentinel).
_LISTS_OF = """
local function lists_of(first, last, start)
  local out = {}
  for i = first, last do
    local size = redis.call('LLEN', KEYS[i])
    if size == 0 then
      out[#out + 1] = {}
    else
      out[#out + 1] = {size, redis.call('LRANGE', KEYS[i], start, -1)}
    end
  end
  return out
end
"""

# KEYS[1] active readers, KEYS[2] the reader's timeline, KEYS[3] celebrity set, KEYS[4] its version
# (adapters/graph_cache.py), KEYS[5] cached viewer, KEYS[6] its generation, then ARGV[6] rate-limit
# counters (adapters/ratelimit.py: the user's, then the IP's), then authors' recent lists to read
# (the followed celebrities, as the caller guesses them); ARGV reader, now (s), the element to
# read the lists from (lists_of), timeline TTL, the celebrity set's version the caller holds (""
# for none), the number of counters, their expiry (ms) and limits. The celebrity set's members
# come back only if its version differs (or it is gone): a large set is not sent with every read.
# A home read in one command, its rate-limit count included: redis-py and the event loop spend
# more CPU per command than the API spends on anything else per read. Over a limit, nothing is
# read: {-1, {}, nil, nil, nil, nil, counts, {}}.
_HOME_READ = _LISTS_OF + """
local counts = {}
local over = false
local rates = tonumber(ARGV[6])
for i = 7, 6 + rates do
  local n = redis.call('INCR', KEYS[i])
  if n == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[7]) end
  counts[#counts + 1] = n
  if n > tonumber(ARGV[7 + #counts]) then over = true end
end
if over then return {-1, {}, false, false, false, false, counts, {}} end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local start = tonumber(ARGV[3])
local home = lists_of(2, 2, start)[1]
if #home > 0 then redis.call('EXPIRE', KEYS[2], ARGV[4]) end
local version = redis.call('GET', KEYS[4])
local celebs = false
if not version or version ~= ARGV[5] or redis.call('EXISTS', KEYS[3]) == 0 then
  celebs = redis.call('SMEMBERS', KEYS[3])
end
return {1, home, celebs, version, redis.call('GET', KEYS[5]), redis.call('GET', KEYS[6]), counts,
        lists_of(7 + rates, #KEYS, start)}
"""

# KEYS = lists; ARGV[1] the element to read them from.
_READ_LISTS = _LISTS_OF + """
return lists_of(1, #KEYS, tonumber(ARGV[1]))
"""

# Keys per call: keeps one script run short (Redis runs scripts one at a time).
KEYS_PER_CALL = 1000
# Ids per call, and per list in one call (Lua's unpack is bounded by its stack).
IDS_PER_CALL = 20_000
IDS_PER_LIST = 4_000


# Home-timeline keys: the prefix, then the reader's id (graph_cache.repair_active scans for them).
TIMELINE_PREFIX = "hl:"


def timeline_key(user_id: int) -> str:
    return f"{TIMELINE_PREFIX}{user_id}"


def recent_key(author_id: int) -> str:
    """An author's own recent entries (built only when a reader pulls them: celebrities)."""
    return f"al:{author_id}"


# A page read of a list: from its tail, or all of it (a cursor into the past: max_id).
def read_start(limit: int, max_id: int | None) -> int:
    return 0 if max_id is not None else -(limit + TAIL_SLACK)


class TimelineCache:
    def __init__(self, client: aioredis.Redis, cap: int, reads: Commands | None = None) -> None:
        """`reads` carries the read path's commands (home_read, recent_pages): the API passes its
        multiplexed connection (adapters/redis_mux.py); everything else goes through `client`."""
        self.redis = client
        self.reads = reads or Pooled(client)
        self.cap = cap
        self._push = client.register_script(_PUSH_ENTRIES)
        self._home_read = client.register_script(_HOME_READ)
        self._read_lists = client.register_script(_READ_LISTS)

    @classmethod
    def from_url(cls, url: str, cap: int, reads: Commands | None = None) -> TimelineCache:
        return cls(connect(url), cap, reads)

    async def close(self) -> None:
        await self.redis.aclose()

    async def push(self, entries: Iterable[tuple[int, int]]) -> int:
        """Append (reader, tweet id) entries to built timelines; returns how many landed."""
        by_reader: dict[int, list[int]] = defaultdict(list)
        for reader, tweet_id in entries:
            by_reader[reader].append(tweet_id)
        lists = [sorted(ids) for ids in by_reader.values()]
        return await self.push_lists([timeline_key(r) for r in by_reader], [len(ids) for ids in lists],
                                     [i for ids in lists for i in ids])

    async def push_lists(self, keys: Sequence[str], sizes: Sequence[int] | npt.NDArray[np.int64],
                         ids: Sequence[int] | npt.NDArray[np.int64]) -> int:
        """Append to each list of `keys` that is built its `sizes[i]` ids, taken in turn from
        `ids` (each list's oldest first), in script calls of up to KEYS_PER_CALL lists and
        IDS_PER_CALL ids, all calls in one pipeline; returns how many (list, id) pairs landed (a
        replay lands them again: reads take distinct ids)."""
        if not len(keys):
            return 0
        sizes, ids = np.asarray(sizes, dtype=np.int64), np.asarray(ids, dtype=np.int64)
        if not sizes.all():  # nothing to append to those (RPUSHX needs a value)
            keys = [k for k, n in zip(keys, sizes.tolist()) if n]
            sizes = sizes[sizes > 0]
            if not keys:
                return 0
        if sizes.max() > IDS_PER_LIST:  # rare (a merge that gave up): cut such lists' ids in parts
            keys, sizes = _split_long(keys, sizes)
        packed = resp.evalsha_lists(self._push.sha, keys, [self.cap, TRIM_SLACK], sizes, ids, KEYS_PER_CALL,
                                    IDS_PER_CALL)
        return sum(int(n) for n in await evalsha_packed(self.redis, self._push, packed))

    async def remove(self, entries: Iterable[tuple[int, int]], author: int | None = None) -> None:
        """Take (reader, tweet id) entries out of timelines (deleted tweets, unfollows), and out of
        the author's recent entries if given."""
        pipe = self.redis.pipeline(transaction=False)
        count = 0
        for reader, tweet_id in entries:
            pipe.lrem(timeline_key(reader), 0, str(tweet_id))
            if author is not None:
                pipe.lrem(recent_key(author), 0, str(tweet_id))
            count += 1
        if count:
            await pipe.execute()

    async def fill(self, reader: int, tweet_ids: Iterable[int], key: str | None = None,
                   ttl_s: int | None = None, create: bool = True) -> bool:
        """Build (or merge into) a reader's timeline: the sentinel plus its entries and the given
        ones, sorted, capped, living `ttl_s` from now if given (in the same transaction: a built
        timeline never outlives its reader's activity by a crash in between, see
        graph_cache._REPAIR_BEGIN), else as long as it had to live. With `key`, the same for
        another list of this shape (an author's recent entries). With create=False only a built
        list is merged into (a follow's backfill); returns whether the list is built.

        The list is rewritten under WATCH: a push that lands meanwhile makes the rewrite fail and
        start over. After MERGE_ATTEMPTS the ids are appended instead (reads sort what they take)."""
        key = key or timeline_key(reader)
        ids = set(tweet_ids)
        async with self.redis.pipeline(transaction=True) as pipe:
            for _attempt in range(MERGE_ATTEMPTS):
                try:
                    await pipe.watch(key)
                    current = await pipe.lrange(key, 0, -1)
                    if not current and not create:
                        return False
                    merged = timeline.merged_oldest_first(current, ids, self.cap, SENTINEL)
                    if current and merged == [int(m) for m in current if m != SENTINEL]:
                        # Nothing new (a rebuild's second read, a backfill of what is there).
                        if ttl_s is not None:
                            await pipe.expire(key, ttl_s)
                        return True
                    ttl_ms = await pipe.pttl(key) if current and ttl_s is None else -1
                    pipe.multi()
                    pipe.delete(key)
                    pipe.rpush(key, SENTINEL, *merged)
                    if ttl_s is not None:
                        pipe.expire(key, ttl_s)
                    elif ttl_ms > 0:
                        pipe.pexpire(key, ttl_ms)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue
        # Pushes kept landing in this list: append to it as they do (it exists: they landed).
        await self.push_lists([key], [len(ids)], sorted(ids))
        if ttl_s is not None:
            await self.redis.expire(key, ttl_s)
        return True

    async def page(self, reader: int, limit: int, max_id: int | None = None,
                   since_id: int | None = None, key: str | None = None) -> list[int] | None:
        """Newest-first ids with since_id < id <= max_id, or None when the timeline isn't built
        (the whole list is read)."""
        (reply,) = await self._read_lists(keys=[key or timeline_key(reader)], args=[0])
        if not reply:
            return None
        return timeline.page(timeline.newest_first(reply[1], SENTINEL), limit, max_id, since_id)

    async def home_read(self, reader: int, now_s: float, limit: int, max_id: int | None, since_id: int | None,
                        ttl_s: int, celebs_keys: tuple[str, str], active_key: str, viewer_keys: list[str],
                        rate: RateCheck | None = None, recent_of: Sequence[int] = (),
                        celebs_version: str | None = None) -> HomeRead:
        """Mark the reader active, read a page of their timeline and extend its life, and fetch the
        celebrity set (unless it is still at `celebs_version`; keys: the set, its version) and
        the cached viewer, in one command; with `rate`, count the request against its limits
        first, and read nothing if it is over one. With `recent_of`, the same page of those
        authors' recent lists comes along (the followed celebrities)."""
        start = read_start(limit, max_id)
        rate_keys = rate.keys if rate is not None else []
        keys = [active_key, timeline_key(reader), *celebs_keys, *viewer_keys, *rate_keys, *map(recent_key, recent_of)]
        args: list[int | float | str] = [str(reader), now_s, start, ttl_s, celebs_version or "", len(rate_keys)]
        if rate is not None:
            args += [rate.expire_ms, *rate.limits]
        status, home, celebs, version, viewer, generation, counts, lists = await self.reads.script(
            self._home_read, keys, args)
        if status == -1:
            return HomeRead(None, None, None, None, None, [int(n) for n in counts], {})
        read = await self._pages([timeline_key(reader), *map(recent_key, recent_of)], [home, *lists], limit,
                                 max_id, since_id)
        recent = dict(zip(recent_of, read[1:]))
        page = read[0][0] if read[0] is not None else None
        return HomeRead(page, set(celebs) if celebs is not None else None, version, viewer, generation,
                        [int(n) for n in counts], recent)

    async def recent_pages(self, authors: list[int], limit: int, max_id: int | None,
                           since_id: int | None) -> list[RecentPage]:
        """Pages of several authors' recent lists in one command: (ids, list length) or None when
        a list is not built."""
        keys = [recent_key(a) for a in authors]
        replies = await self.reads.script(self._read_lists, keys, [read_start(limit, max_id)])
        return await self._pages(keys, replies, limit, max_id, since_id)

    async def _pages(self, keys: list[str], replies: list[Any], limit: int, max_id: int | None,
                     since_id: int | None) -> list[RecentPage]:
        """The page of each list read (`replies`, from lists_of). A list whose tail was read may
        hold more of the page before it (its tail was all in range and the page is short: many
        duplicates, or entries appended far out of order): those lists are read whole, together."""
        pages: list[RecentPage] = []
        again: list[int] = []
        for i, reply in enumerate(replies):
            if not reply:
                pages.append(None)
                continue
            size, members = int(reply[0]), reply[1]
            ids = timeline.newest_first(members, SENTINEL)
            got = timeline.page(ids, limit, max_id, since_id)
            if (len(got) < limit and len(members) < size and ids
                    and (since_id is None or ids[-1] > since_id)):
                again.append(i)
            pages.append((got, size))
        if again:
            whole = await self.reads.script(self._read_lists, [keys[i] for i in again], [0])
            for i, reply in zip(again, whole):
                pages[i] = ((timeline.page(timeline.newest_first(reply[1], SENTINEL), limit, max_id, since_id),
                             int(reply[0])) if reply else None)
        return pages


def _split_long(keys: Sequence[str], sizes: npt.NDArray[np.int64]) -> tuple[list[str], npt.NDArray[np.int64]]:
    """The same appends with no list given more than IDS_PER_LIST ids at once (the key repeated)."""
    out_keys: list[str] = []
    out_sizes: list[int] = []
    for key, size in zip(keys, sizes.tolist()):
        while True:
            out_keys.append(key)
            out_sizes.append(min(size, IDS_PER_LIST))
            size -= IDS_PER_LIST
            if size <= 0:
                break
    return out_keys, np.array(out_sizes, dtype=np.int64)


async def evalsha_many(client: aioredis.Redis, script: AsyncScript,
                       calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
    """Run a script once per (keys, args) on one connection, pipelined, packed by hiredis.

    redis-py packs commands in Python, argument by argument: for a fan-out batch (~16 calls of
    1,000 keys) that took 16 ms of the worker's CPU, hiredis 1.8 ms (bench/fanout.py). And a
    redis-py pipeline holding a Script asks Redis whether it exists before every execute, a round
    trip of its own. After a Redis restart the script is loaded again and the calls repeated
    (callers' scripts are idempotent)."""
    return await evalsha_packed(client, script, [hiredis.pack_command(("EVALSHA", script.sha, len(keys), *keys, *args))
                                                 for keys, args in calls])


async def evalsha_packed(client: aioredis.Redis, script: AsyncScript, calls: Sequence[bytes]) -> list[Any]:
    """evalsha_many for EVALSHA commands packed already (adapters/resp.py)."""
    if not calls:
        return []
    pool = client.connection_pool
    packed = b"".join(calls)
    for attempt in (1, 2):
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.send_packed_command(packed, check_health=False)
            return [await conn.read_response() for _ in calls]
        except NoScriptError:
            # The other replies are still unread: this connection cannot be reused.
            await conn.disconnect()
            if attempt == 2:
                raise
            await client.script_load(script.script)
        except BaseException:
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)
    raise AssertionError("unreachable")


async def send_packed(client: aioredis.Redis, command: bytes) -> Any:
    """One command packed already (adapters/resp.py): for a command of thousands of arguments
    (the fan-out's last-read lookups) redis-py's packing, argument by argument in Python, costs
    several times the CPU (bench/fanout.py)."""
    pool = client.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        await conn.send_packed_command(command, check_health=False)
        return await conn.read_response()
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)
