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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from adapters.redis_mux import Commands, Pooled
from pipeline import timeline
from pipeline.snowflake import timestamp_ms

SENTINEL = "-"


@dataclass(frozen=True)
class RateCheck:
    """Rate-limit counters to increment in the same command (adapters/ratelimit.RateLimiter.check)."""
    keys: list[str]
    expire_ms: int
    limits: list[int]  # one per key


# A page of an author's recent-entry set: (ids, the set's size), or None when it is not built.
RecentPage = tuple[list[int], int] | None


@dataclass(frozen=True)
class HomeRead:
    page: list[int] | None  # None: the timeline is not built (or the request is over a limit)
    celebs: set[str] | None  # the celebrity set's members; None: unchanged since the version passed in
    celebs_version: str | None  # the version of the set (None: unknown)
    viewer: str | None
    generation: str | None
    counts: list[int]  # the rate-limit counters after this request, if a RateCheck was given
    recent: dict[int, RecentPage]  # the pages of the recent-entry sets asked for, by author


# KEYS = timelines (or authors' recent sets), entry by entry; ARGV[1] cap, then per entry: score,
# member, and how many of the KEYS that follow are its. Appends to built keys only, trims them to
# the cap, and returns how many (key, entry) pairs landed. One call carries a whole batch's
# deliveries: redis-py spends far more CPU per command, and per argument, than Redis spends per
# ZADD, and this layout costs one argument per delivery (bench/fanout.py).
_PUSH_ENTRIES = """
local cap = tonumber(ARGV[1])
local k = 1
local took = 0
for i = 2, #ARGV, 3 do
  local score, member = ARGV[i], ARGV[i + 1]
  local last = k + tonumber(ARGV[i + 2]) - 1
  for j = k, last do
    local key = KEYS[j]
    -- A built key holds at least the sentinel: its size answers "built?" and "full?" at once.
    local size = redis.call('ZCARD', key)
    if size > 0 then
      size = size + redis.call('ZADD', key, score, member)
      if size > cap + 1 then
        redis.call('ZREMRANGEBYRANK', key, 1, -(cap + 1))
      end
      took = took + 1
    end
  end
  k = last + 1
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


# Lua, shared by the scripts below: a page of each of KEYS[first..last] (sorted sets of the
# timeline's shape: authors' recent entries), between scores hi and lo, at most n members. Per
# key: {} if not built, else {size, members}.
_PAGES_OF = """
local function pages_of(first, last, hi, lo, n)
  local out = {}
  for i = first, last do
    local key = KEYS[i]
    if redis.call('EXISTS', key) == 0 then
      out[#out + 1] = {}
    else
      out[#out + 1] = {redis.call('ZCARD', key), redis.call('ZREVRANGEBYSCORE', key, hi, lo, 'LIMIT', 0, n)}
    end
  end
  return out
end
"""

# KEYS[1] active readers, KEYS[2] the reader's timeline, KEYS[3] celebrity set, KEYS[4] its version
# (adapters/graph_cache.py), KEYS[5] cached viewer, KEYS[6] its generation, then ARGV[8] rate-limit
# counters (adapters/ratelimit.py: the user's, then the IP's), then authors' recent-entry sets to
# read pages of (the followed celebrities, as the caller guesses them); ARGV reader, now (s), max
# score, min score, count, timeline TTL, the celebrity set's version the caller holds ("" for
# none), the number of counters, their expiry (ms) and limits. The celebrity set's members come
# back only if its version differs (or it is gone): a large set is not sent with every read. A
# home read in one command, its rate-limit count included: redis-py and the event loop spend
# more CPU per command than the API spends on anything else per read. Over a limit, nothing is
# read: {-1, {}, nil, nil, nil, nil, counts, {}}.
_HOME_READ = _PAGES_OF + """
local counts = {}
local over = false
local rates = tonumber(ARGV[8])
for i = 7, 6 + rates do
  local n = redis.call('INCR', KEYS[i])
  if n == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[9]) end
  counts[#counts + 1] = n
  if n > tonumber(ARGV[9 + #counts]) then over = true end
end
if over then return {-1, {}, false, false, false, false, counts, {}} end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local exists = redis.call('EXISTS', KEYS[2])
local page = {}
if exists == 1 then
  page = redis.call('ZREVRANGEBYSCORE', KEYS[2], ARGV[3], ARGV[4], 'LIMIT', 0, tonumber(ARGV[5]))
  redis.call('EXPIRE', KEYS[2], ARGV[6])
end
local version = redis.call('GET', KEYS[4])
local celebs = false
if not version or version ~= ARGV[7] or redis.call('EXISTS', KEYS[3]) == 0 then
  celebs = redis.call('SMEMBERS', KEYS[3])
end
return {exists, page, celebs, version, redis.call('GET', KEYS[5]), redis.call('GET', KEYS[6]), counts,
        pages_of(7 + rates, #KEYS, ARGV[3], ARGV[4], tonumber(ARGV[5]))}
"""

# KEYS = authors' recent-entry sets; ARGV max score, min score, count.
_READ_PAGES = _PAGES_OF + """
return pages_of(1, #KEYS, ARGV[1], ARGV[2], tonumber(ARGV[3]))
"""

# Keys per call: keeps one script run short (Redis runs scripts one at a time).
KEYS_PER_CALL = 1000


def timeline_key(user_id: int) -> str:
    return f"tl:{user_id}"


def recent_key(author_id: int) -> str:
    """An author's own recent entries (built only when a reader pulls them: celebrities)."""
    return f"ur:{author_id}"


class TimelineCache:
    def __init__(self, client: aioredis.Redis, cap: int, reads: Commands | None = None) -> None:
        """`reads` carries the read path's commands (home_read, recent_pages): the API passes its
        multiplexed connection (adapters/redis_mux.py); everything else goes through `client`."""
        self.redis = client
        self.reads = reads or Pooled(client)
        self.cap = cap
        self._push = client.register_script(_PUSH_ENTRIES)
        self._home_read = client.register_script(_HOME_READ)
        self._read_pages = client.register_script(_READ_PAGES)

    @classmethod
    def from_url(cls, url: str, cap: int, reads: Commands | None = None) -> TimelineCache:
        return cls(connect(url), cap, reads)

    async def close(self) -> None:
        await self.redis.aclose()

    async def push(self, entries: Iterable[tuple[int, int]]) -> int:
        """Append (reader, tweet id) entries to built timelines; returns how many landed."""
        by_entry: dict[int, list[str]] = defaultdict(list)
        for reader, tweet_id in entries:
            by_entry[tweet_id].append(timeline_key(reader))
        return await self.push_entries(by_entry.items())

    async def push_entries(self, deliveries: Iterable[tuple[int, Sequence[str]]]) -> int:
        """Append each entry to those of its keys that are built (timelines, or authors' recent
        sets), up to KEYS_PER_CALL keys per script call, all calls in one pipeline; returns how
        many (key, entry) pairs landed (a replay lands the same pairs again, changing nothing)."""
        calls: list[tuple[list[str], list[int | str]]] = []
        keys: list[str] = []
        args: list[int | str] = [self.cap]
        for entry, entry_keys in deliveries:
            score, member = timestamp_ms(entry), str(entry)
            start = 0
            while start < len(entry_keys):
                part = entry_keys[start:start + KEYS_PER_CALL - len(keys)]
                keys += part
                args += (score, member, len(part))
                start += len(part)
                if len(keys) >= KEYS_PER_CALL:
                    calls.append((keys, args))
                    keys, args = [], [self.cap]
        if keys:
            calls.append((keys, args))
        return sum(int(n) for n in await evalsha_many(self.redis, self._push, calls))

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

    async def fill(self, reader: int, tweet_ids: Iterable[int], key: str | None = None,
                   ttl_s: int | None = None) -> None:
        """Build (or merge into) a reader's timeline: the sentinel plus the given entries, capped,
        living `ttl_s` from now if given (in the same transaction: a built timeline never outlives
        its reader's activity by a crash in between, see graph_cache._REPAIR_BEGIN). With `key`,
        the same for another key of this shape (an author's recent entries)."""
        mapping: dict[str, float] = {SENTINEL: 0}
        mapping.update({str(t): timestamp_ms(t) for t in tweet_ids})
        key = key or timeline_key(reader)
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(key, mapping)
        pipe.zremrangebyrank(key, 1, -(self.cap + 1))  # keep rank 0 (sentinel) and the top cap
        if ttl_s is not None:
            pipe.expire(key, ttl_s)
        await pipe.execute()

    async def page(self, reader: int, limit: int, max_id: int | None = None,
                   since_id: int | None = None) -> list[int] | None:
        """Newest-first ids with since_id < id <= max_id, or None when the timeline isn't built."""
        pipe = self.redis.pipeline(transaction=False)
        self.queue_page(pipe, reader, limit, max_id, since_id)
        exists, members = await pipe.execute()
        return self.page_result(exists, members, limit, max_id, since_id)

    async def home_read(self, reader: int, now_s: float, limit: int, max_id: int | None, since_id: int | None,
                        ttl_s: int, celebs_keys: tuple[str, str], active_key: str, viewer_keys: list[str],
                        rate: RateCheck | None = None, recent_of: Sequence[int] = (),
                        celebs_version: str | None = None) -> HomeRead:
        """Mark the reader active, read a page of their timeline and extend its life, and fetch the
        celebrity set (unless it is still at `celebs_version`; keys: the set, its version) and
        the cached viewer, in one command; with `rate`, count the request against its limits
        first, and read nothing if it is over one. With `recent_of`, the same page of those
        authors' recent-entry sets comes along (the followed celebrities)."""
        hi, lo = _score_range(max_id, since_id)
        rate_keys = rate.keys if rate is not None else []
        keys = [active_key, timeline_key(reader), *celebs_keys, *viewer_keys, *rate_keys, *map(recent_key, recent_of)]
        args: list[int | float | str] = [str(reader), now_s, hi, lo, limit * 2 + 16, ttl_s, celebs_version or "",
                                         len(rate_keys)]
        if rate is not None:
            args += [rate.expire_ms, *rate.limits]
        exists, members, celebs, version, viewer, generation, counts, pages = await self.reads.script(
            self._home_read, keys, args)
        if exists == -1:
            return HomeRead(None, None, None, None, None, [int(n) for n in counts], {})
        page = self.page_result(exists, members, limit, max_id, since_id)
        recent = dict(zip(recent_of, self._recent_results(pages, limit, max_id, since_id)))
        return HomeRead(page, set(celebs) if celebs is not None else None, version, viewer, generation,
                        [int(n) for n in counts], recent)

    async def recent_pages(self, authors: list[int], limit: int, max_id: int | None,
                           since_id: int | None) -> list[RecentPage]:
        """Pages of several authors' recent-entry sets in one command: (ids, set size) or None
        when a set is not built."""
        hi, lo = _score_range(max_id, since_id)
        replies = await self.reads.script(self._read_pages, [recent_key(a) for a in authors], [hi, lo, limit * 2 + 16])
        return self._recent_results(replies, limit, max_id, since_id)

    def _recent_results(self, replies: list[Any], limit: int, max_id: int | None,
                        since_id: int | None) -> list[RecentPage]:
        out: list[RecentPage] = []
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


async def evalsha_many(client: aioredis.Redis, script: AsyncScript,
                       calls: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> list[Any]:
    """Run a script once per (keys, args) on one connection, pipelined, packed by hiredis.

    redis-py packs commands in Python, argument by argument: for a fan-out batch (~16 calls of
    1,000 keys) that took 16 ms of the worker's CPU, hiredis 1.8 ms (bench/fanout.py). And a
    redis-py pipeline holding a Script asks Redis whether it exists before every execute, a round
    trip of its own. After a Redis restart the script is loaded again and the calls repeated
    (callers' scripts are idempotent)."""
    if not calls:
        return []
    pool = client.connection_pool
    for attempt in (1, 2):
        packed = b"".join(hiredis.pack_command(("EVALSHA", script.sha, len(keys), *keys, *args))
                          for keys, args in calls)
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


async def packed_call(client: aioredis.Redis, *args: str | int | float) -> Any:
    """One command packed by hiredis: for a command of thousands of arguments (the fan-out's
    last-read lookups) redis-py's packing, argument by argument in Python, costs several times
    the CPU (bench/fanout.py)."""
    pool = client.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        await conn.send_packed_command(hiredis.pack_command(args), check_health=False)
        return await conn.read_response()
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)


def _score_range(max_id: int | None, since_id: int | None) -> tuple[str, str]:
    """ZREVRANGEBYSCORE bounds for since_id < id <= max_id (by millisecond; cut by id after)."""
    hi = f"{timestamp_ms(max_id)}" if max_id is not None else "+inf"
    lo = f"{timestamp_ms(since_id)}" if since_id is not None else "(0"
    return hi, lo
