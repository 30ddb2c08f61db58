"""Read-through caches in Redis for what every read hydrates: tweets, users and viewers.

Cassandra stays the truth (DESIGN.md decision 3); these keys only save its queries (a home-timeline
read used to cost ~3.5 Cassandra round trips and most of the API's CPU, bench/fanout.py):

    tw:{tweet}  STRING  a live tweet (compact JSON list), or "x": deleted (a tombstone)
    ec:{tweet}  HASH    engagement counts and the ingest offset they include (pipeline/counts.py)
    u:{user}    STRING  a user (compact JSON list)
    vw:{user}   STRING  the viewer: following, blocked either way, hidden (blocked or muted)
    vg:{user}   STRING  the viewer's generation, bumped by the graph agent on every edge change

How each stays correct when a reader fills a key while an agent changes the row underneath:

- tweets change only by deletion and by a moderator's verdict. Readers fill with SET NX; the agent
  deleting a tweet overwrites the key with a tombstone after Cassandra's write, and the moderation
  agent writes a re-judged tweet through (SET) after its write. A reader's stale fill either comes
  first (and is overwritten) or finds the agent's value (NX fails). Absent rows are not cached: a
  tweet accepted a moment ago may not be written yet.
- users change by profile updates. The users agent writes the row through (SET, after reading it
  back from Cassandra, so event-time ordering stays Cassandra's); readers fill with SET NX.
- counts change with every engagement. Agents and readers both write through one compare: only
  counts including an ingest offset at least as new as the stored one replace them.
- viewers change with follows, blocks and mutes. Readers note the generation before reading
  Cassandra and fill only if it is unchanged (a Lua compare-and-set); the agent bumps it, then
  deletes the cached viewer. A block therefore takes effect on the next read, not after a TTL.

TTLs bound what an unexpected interleaving (an evicted generation key) could leave behind.

In front of the tweet, user and count keys, each API process keeps local copies (LocalCache):
most pages hydrate the same recent tweets and authors, and a Redis round trip costs the API more
CPU than anything else it does per read. The API reads these keys with client-side caching
(adapters/redis_mux.py): Redis announces each change to a key the process read, and its copy goes
at once, so a delete or profile change shows in every process as soon as it reaches Redis.
Without announcements (a connection that does not track) copies live 2 s.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import orjson
import redis.asyncio as aioredis

from adapters.cassandra_store import CassandraStore
from adapters.redis_mux import Commands, Pooled
from adapters.redis_store import evalsha_many

from pipeline.counts import KINDS, Counts
from pipeline.lru import SizedLRU
from pipeline.model import Tweet, User
from pipeline.visibility import Viewer

TWEET_TTL_S = 24 * 3600
TOMBSTONE_TTL_S = 7 * 24 * 3600
USER_TTL_S = 3600
VIEWER_TTL_S = 3600
GENERATION_TTL_S = 2 * VIEWER_TTL_S
TOMBSTONE = "x"

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
W = TypeVar("W")

# KEYS[1] a tweet; ARGV[1] its value, ARGV[2] TTL, ARGV[3] the tombstone. A deleted tweet stays
# deleted: a re-judged tweet is written through unless the deleting agent got there first.
_SET_UNLESS_TOMBSTONE = """
if redis.call('GET', KEYS[1]) == ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""

# KEYS[1] viewer, KEYS[2] its generation; ARGV[1] generation seen before reading Cassandra ("" if
# none), ARGV[2] value, ARGV[3] ttl. Fills only if no graph change happened since.
_FILL_IF_GENERATION = """
local g = redis.call('GET', KEYS[2]) or ''
if g ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


# KEYS[1] a tweet's counts; ARGV[1] the ingest offset they include, ARGV[2] TTL, ARGV[3..6] likes,
# retweets, replies, quotes. Agents and readers (filling a miss from Cassandra) both write through
# this: only a position at least as new as the stored one is taken, so a reader's fill from an
# older read never replaces what the agent wrote meanwhile.
_PUT_COUNTS_IF_NEWER = """
local cur = redis.call('HGET', KEYS[1], 'off')
if cur and tonumber(cur) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'off', ARGV[1], 'likes', ARGV[3], 'retweets', ARGV[4], 'replies', ARGV[5], 'quotes', ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""
_GET_COUNTS = """
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HMGET', key, 'likes', 'retweets', 'replies', 'quotes') end
return out
"""
COUNTS_TTL_S = 24 * 3600


TWEET_PREFIX, USER_PREFIX, COUNTS_PREFIX = "tw", "u", "ec"


def counts_key(tweet_id: int) -> str:
    return f"{COUNTS_PREFIX}:{tweet_id}"


def tweet_key(tweet_id: int) -> str:
    return f"{TWEET_PREFIX}:{tweet_id}"


def user_key(user_id: int) -> str:
    return f"{USER_PREFIX}:{user_id}"


def viewer_key(user_id: int) -> str:
    return f"vw:{user_id}"


def generation_key(user_id: int) -> str:
    return f"vg:{user_id}"


def encode_tweet(t: Tweet) -> bytes:
    return orjson.dumps([t.tweet_id, t.author_id, t.text, t.reply_to, t.quote_of, t.created_at,
                         list(t.media), t.retweet_of, t.moderation])


def decode_tweet(raw: str | bytes) -> Tweet:
    tid, author, text, reply_to, quote_of, created, media, retweet_of, *rest = orjson.loads(raw)
    return Tweet(tweet_id=tid, author_id=author, text=text, reply_to=reply_to, quote_of=quote_of,
                 created_at=created, media=tuple(media), retweet_of=retweet_of,
                 moderation=rest[0] if rest else "allow")  # entries cached before moderation: allow


def encode_user(u: User) -> bytes:
    return orjson.dumps([u.user_id, u.handle, u.display_name, u.bio, u.protected, u.region, u.created_at])


# Where encode_user puts the region.
USER_REGION = 5


def decode_user(raw: str | bytes) -> User:
    uid, handle, name, bio, protected, region, created = orjson.loads(raw)
    return User(user_id=uid, handle=handle, display_name=name, bio=bio, protected=protected,
                region=region, created_at=created)


def encode_viewer(v: Viewer) -> bytes:
    return orjson.dumps([sorted(v.following), sorted(v.blocked_either_way), sorted(v.hidden)])


def decode_viewer(user_id: int, raw: str | bytes) -> Viewer:
    following, blocked, hidden = orjson.loads(raw)
    return Viewer(user_id=user_id, following=frozenset(following), hidden=frozenset(hidden),
                  blocked_either_way=frozenset(blocked))


# Viewers kept decoded per process, up to this many ids in all (followees, blocks, mutes; about
# 60 bytes each decoded: 60 MB). A budget in entries (2,048) was smaller than the readers one
# process serves in a few seconds (bench/fanout.py: 3,000), and readers coming back in turn found
# theirs always evicted.
DECODED_VIEWER_IDS = 1_000_000


class DecodedViewers:
    """Viewers by user with the cached text each was decoded from, least recently used dropped
    first beyond `budget` ids in all (a viewer larger than the budget is not kept)."""

    def __init__(self, budget: int = DECODED_VIEWER_IDS) -> None:
        self._entries: SizedLRU[int, tuple[str | bytes, Viewer]] = SizedLRU(budget)

    @property
    def ids(self) -> int:
        """Ids held, all viewers together."""
        return self._entries.size

    @staticmethod
    def size(viewer: Viewer) -> int:
        return 1 + len(viewer.following) + len(viewer.blocked_either_way) + len(viewer.hidden)

    def get(self, user_id: int) -> tuple[str | bytes, Viewer] | None:
        return self._entries.get(user_id)

    def put(self, user_id: int, raw: str | bytes, viewer: Viewer) -> None:
        self._entries.put(user_id, (raw, viewer), self.size(viewer))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, user_id: int) -> bool:  # without counting as a use
        return user_id in self._entries


class HotCache:
    def __init__(self, client: aioredis.Redis, reads: Commands | None = None) -> None:
        """`reads` carries the lookups (tweets, users, counts, viewers): the API passes its
        multiplexed connection (adapters/redis_mux.py); writes and fills go through `client`."""
        self.redis = client
        self.reads = reads or Pooled(client)
        self._decoded = DecodedViewers()
        self._fill_viewer = client.register_script(_FILL_IF_GENERATION)
        self._put_counts = client.register_script(_PUT_COUNTS_IF_NEWER)
        self._get_counts = client.register_script(_GET_COUNTS)
        self._put_live = client.register_script(_SET_UNLESS_TOMBSTONE)

    # -- reads (the API) ---------------------------------------------------------------------
    async def tweets(self, ids: Iterable[int],
                     load: Callable[[list[int]], Awaitable[dict[int, Tweet]]]) -> dict[int, Tweet]:
        """Live tweets by id: the cached ones, the rest from `load` (and then cached); a
        tombstone answers "deleted" without asking Cassandra."""
        return await self._read_through(ids, tweet_key, decode_tweet, encode_tweet, TWEET_TTL_S, load)

    async def users(self, ids: Iterable[int],
                    load: Callable[[list[int]], Awaitable[dict[int, User]]]) -> dict[int, User]:
        return await self._read_through(ids, user_key, decode_user, encode_user, USER_TTL_S, load)

    async def regions(self, ids: Iterable[int],
                      load: Callable[[list[int]], Awaitable[dict[int, User]]]) -> dict[int, str | None]:
        """Each registered user's region, from the same cache as users(): only the region is read
        out of a cached profile (0.33 us against 1.9 us to decode it whole); the misses are loaded
        and cached whole, as users() does."""
        out, missing = await self._cached(ids, user_key, lambda raw: orjson.loads(raw)[USER_REGION])
        if missing:
            loaded = await load(missing)
            await self._fill(loaded, user_key, encode_user, USER_TTL_S)
            out.update((u, user.region) for u, user in loaded.items())
        return out

    async def _read_through(self, ids: Iterable[int], key: Callable[[int], str], decode: Callable[[str | bytes], V],
                            encode: Callable[[V], bytes], ttl_s: int,
                            load: Callable[[list[int]], Awaitable[dict[int, V]]]) -> dict[int, V]:
        """MGET the keys; load the misses and fill them with SET NX (an agent's write wins)."""
        out, missing = await self._cached(ids, key, decode)
        if missing:
            loaded = await load(missing)
            await self._fill(loaded, key, encode, ttl_s)
            out.update(loaded)
        return out

    async def _fill(self, loaded: dict[int, V], key: Callable[[int], str], encode: Callable[[V], bytes],
                    ttl_s: int) -> None:
        """Cache what was loaded with SET NX: an agent's write-through since the load wins."""
        if loaded:
            pipe = self.redis.pipeline(transaction=False)
            for ident, value in loaded.items():
                pipe.set(key(ident), encode(value), nx=True, ex=ttl_s)
            await pipe.execute()

    async def _cached(self, ids: Iterable[int], key: Callable[[int], str],
                      decode: Callable[[str | bytes], V]) -> tuple[dict[int, V], list[int]]:
        """One MGET: the cached values decoded (a tombstone: left out), and the ids not cached."""
        wanted = list(dict.fromkeys(ids))
        out: dict[int, V] = {}
        missing: list[int] = []
        if not wanted:
            return out, missing
        for ident, raw in zip(wanted, await self.reads.call_tracked("MGET", *[key(i) for i in wanted])):
            if raw is None:
                missing.append(ident)
            elif raw != TOMBSTONE:
                out[ident] = decode(raw)
        return out, missing

    async def viewer(self, user_id: int, load: Callable[[int], Awaitable[Viewer]]) -> Viewer:
        return await self.viewer_from(user_id, await self.reads.call("MGET", *self.viewer_keys(user_id)), load)

    @staticmethod
    def viewer_keys(user_id: int) -> list[str]:
        """MGET these (in a shared pipeline if convenient), then call viewer_from with the reply."""
        return [viewer_key(user_id), generation_key(user_id)]

    def last_decoded_viewer(self, user_id: int) -> Viewer | None:
        """The viewer as this process last decoded it, however old: a guess, never an answer."""
        seen = self._decoded.get(user_id)
        return seen[1] if seen is not None else None

    async def viewer_from(self, user_id: int, reply: Sequence[str | bytes | None],
                          load: Callable[[int], Awaitable[Viewer]]) -> Viewer:
        raw, generation = reply
        if raw is not None:
            # Decoding a viewer (frozensets of every followee) costs more than comparing the
            # cached text with the one it was decoded from.
            seen = self._decoded.get(user_id)
            if seen is not None and seen[0] == raw:
                return seen[1]
            decoded = decode_viewer(user_id, raw)
            self._decoded.put(user_id, raw, decoded)
            return decoded
        viewer = await load(user_id)
        await self._fill_viewer(keys=[viewer_key(user_id), generation_key(user_id)],
                                args=[generation if generation is not None else "", encode_viewer(viewer), VIEWER_TTL_S])
        return viewer

    async def counts(self, ids: Iterable[int],
                     load: Callable[[list[int]], Awaitable[dict[int, Counts]]]) -> dict[int, Counts]:
        """Engagement counts by tweet (zeros for a tweet nobody engaged with)."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        out: dict[int, Counts] = {}
        missing: list[int] = []
        for tid, values in zip(wanted, await self.reads.script_tracked(self._get_counts, [counts_key(t) for t in wanted], [])):
            if values[0] is None:
                missing.append(tid)
            else:
                out[tid] = Counts(values={k: int(v) for k, v in zip(KINDS, values)})
        if missing:
            loaded = await load(missing)
            filled = {t: loaded.get(t, Counts()) for t in missing}
            await self.put_counts(filled)
            out.update(filled)
        return out

    async def put_counts(self, counts: Mapping[int, Counts]) -> None:
        if not counts:
            return
        await evalsha_many(self.redis, self._put_counts, [
            ([counts_key(tid)], [c.offset, COUNTS_TTL_S, *(c.get(k) for k in KINDS)]) for tid, c in counts.items()])

    # -- writes (the agents, after Cassandra's write) ----------------------------------------
    async def tombstone_tweets(self, tweet_ids: Iterable[int]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        n = 0
        for tid in tweet_ids:
            pipe.set(tweet_key(tid), TOMBSTONE, ex=TOMBSTONE_TTL_S)
            n += 1
        if n:
            await pipe.execute()

    async def put_tweets(self, tweets: Iterable[Tweet]) -> None:
        """Write through a tweet whose moderation changed (after Cassandra's write): a reader's
        stale fill either came first and is overwritten, or finds this value (NX fails)."""
        await evalsha_many(self.redis, self._put_live, [
            ([tweet_key(t.tweet_id)], [encode_tweet(t), TWEET_TTL_S, TOMBSTONE]) for t in tweets])

    async def put_users(self, users: Iterable[User]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        n = 0
        for user in users:
            pipe.set(user_key(user.user_id), encode_user(user), ex=USER_TTL_S)
            n += 1
        if n:
            await pipe.execute()

    async def invalidate_viewers(self, user_ids: Iterable[int]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        n = 0
        for uid in set(user_ids):
            pipe.incr(generation_key(uid))
            pipe.expire(generation_key(uid), GENERATION_TTL_S)
            pipe.delete(viewer_key(uid))
            n += 1
        if n:
            await pipe.execute()



class LocalCache(Generic[K, V]):
    """A small in-process cache in front of Redis, for what every page hydrates (the same recent
    tweets and authors, read by many readers within seconds). Entries live `ttl_s` at most; with
    Redis's announcements (`forget`, `forget_all`) a change reaches this process at once and the
    TTL only bounds what a silently broken announcement connection could leave behind. Absent
    rows are never remembered.

    A fetch is bracketed by `fetching` and `fetched`: an announcement can overtake the reply it
    concerns (it comes on another connection), so a key announced while a fetch of it was in
    flight is not kept from that fetch, nor is anything fetched across a `forget_all`."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._in_flight: dict[K, int] = {}  # keys being fetched: by how many fetches
        self._changed: set[K] = set()  # of those, announced since one of those fetches began
        self._epoch = 0  # bumped by forget_all

    def __len__(self) -> int:
        return len(self._entries)

    def get_many(self, keys: Iterable[K], now: float) -> tuple[dict[K, V], list[K]]:
        found: dict[K, V] = {}
        missing: list[K] = []
        for k in keys:
            hit = self._entries.get(k)
            if hit is not None and hit[0] > now:
                found[k] = hit[1]
            else:
                missing.append(k)
        return found, missing

    def fetching(self, keys: Iterable[K]) -> int:
        """Before fetching `keys`; pass what this returns to `fetched`."""
        for k in keys:
            self._in_flight[k] = self._in_flight.get(k, 0) + 1
        return self._epoch

    def fetched(self, keys: Iterable[K], items: Mapping[K, V], epoch: int, now: float) -> None:
        """After the fetch of `keys` begun at `epoch` (failed or not) that found `items`: keeps
        those no announcement overtook."""
        if epoch == self._epoch:
            changed = self._changed
            self._put_many({k: v for k, v in items.items() if k not in changed}, now)
        for k in keys:
            n = self._in_flight[k] - 1
            if n:
                self._in_flight[k] = n
            else:
                del self._in_flight[k]
                self._changed.discard(k)

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)
        if key in self._in_flight:
            self._changed.add(key)

    def forget_all(self) -> None:
        self._entries.clear()
        self._epoch += 1

    def _put_many(self, items: Mapping[K, V], now: float) -> None:
        expires = now + self.ttl_s
        for k, v in items.items():
            self._entries[k] = (expires, v)
            self._entries.move_to_end(k)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


# Without announcements (a connection that does not track), a delete or profile change shows in
# every API process within this time of reaching Redis.
LOCAL_TTL_S = 2.0
# With them, at once. The mux PINGs its announcements' connection every second, so one that died
# silently is found within seconds and everything is forgotten; this bounds whatever else could
# go unseen. At 30 s, copies expired within a benchmark's read runs, and at 1,000/s the reads went
# back to Redis for them (bench/fanout.py: MGET 0.35 and CLIENT CACHING 0.54 per read, against
# 0.02 each in the 500/s run before it).
TRACKED_LOCAL_TTL_S = 600.0
LOCAL_MAX_ENTRIES = 50_000


class CachedReads:
    """The three lookups every read path makes, through the caches; Cassandra on a miss. The
    process-local caches in front hear Redis's announcements when the lookups' connection tracks
    (adapters/redis_mux.py)."""

    def __init__(self, cass: CassandraStore, hot: HotCache, local_ttl_s: float | None = None) -> None:
        self.cass = cass
        self.hot = hot
        if local_ttl_s is None:
            local_ttl_s = TRACKED_LOCAL_TTL_S if hot.reads.tracking else LOCAL_TTL_S
        self._tweets: LocalCache[int, Tweet] = LocalCache(local_ttl_s, LOCAL_MAX_ENTRIES)
        self._users: LocalCache[int, User] = LocalCache(local_ttl_s, LOCAL_MAX_ENTRIES)
        self._counts: LocalCache[int, Counts] = LocalCache(local_ttl_s, LOCAL_MAX_ENTRIES)
        self._by_prefix: dict[str, LocalCache[int, Any]] = {
            TWEET_PREFIX: self._tweets, USER_PREFIX: self._users, COUNTS_PREFIX: self._counts}
        hot.reads.on_invalidate(self._announced)

    def _announced(self, keys: list[str] | None) -> None:
        if keys is None:
            for every in self._by_prefix.values():
                every.forget_all()
            return
        for key in keys:
            prefix, _, ident = key.partition(":")
            cache = self._by_prefix.get(prefix)
            if cache is not None and ident.isdigit():
                cache.forget(int(ident))

    async def get_tweets(self, ids: Iterable[int]) -> dict[int, Tweet]:
        return await _through_local(self._tweets, ids, self._load_tweets)

    async def get_users(self, ids: Iterable[int]) -> dict[int, User]:
        return await _through_local(self._users, ids, self._load_users)

    async def viewer(self, user_id: int) -> Viewer:
        return await self.hot.viewer(user_id, self.cass.viewer)

    async def get_counts(self, ids: Iterable[int]) -> dict[int, Counts]:
        return await _through_local(self._counts, ids, self._load_counts)

    async def tweets_and_counts(self, ids: Iterable[int]) -> tuple[dict[int, Tweet], dict[int, Counts]]:
        """get_tweets and get_counts of the same ids, the two misses fetched together."""
        wanted = list(ids)
        return await _both(self._tweets, wanted, self._load_tweets, self._counts, wanted, self._load_counts)

    async def users_and_counts(self, user_ids: Iterable[int],
                               tweet_ids: Iterable[int]) -> tuple[dict[int, User], dict[int, Counts]]:
        """get_users and get_counts, the two misses fetched together."""
        return await _both(self._users, user_ids, self._load_users, self._counts, tweet_ids, self._load_counts)

    def _load_tweets(self, ids: list[int]) -> Awaitable[dict[int, Tweet]]:
        return self.hot.tweets(ids, self.cass.get_tweets)

    def _load_users(self, ids: list[int]) -> Awaitable[dict[int, User]]:
        return self.hot.users(ids, self.cass.get_users)

    def _load_counts(self, ids: list[int]) -> Awaitable[dict[int, Counts]]:
        return self.hot.counts(ids, self.cass.engagement_counts)


async def _both(a: LocalCache[int, V], a_ids: Iterable[int], a_load: Callable[[list[int]], Awaitable[dict[int, V]]],
                b: LocalCache[int, W], b_ids: Iterable[int], b_load: Callable[[list[int]], Awaitable[dict[int, W]]]
                ) -> tuple[dict[int, V], dict[int, W]]:
    """Two lookups through their local copies. Only what those miss is awaited, together when
    both miss: a page's tweets and counts are usually all local, and asyncio.gather's two tasks
    cost 16 us of CPU even then (uvloop, these machines), a fiftieth of a home read's."""
    now = time.monotonic()
    a_found, a_missing = a.get_many(a_ids, now)
    b_found, b_missing = b.get_many(b_ids, now)
    if a_missing and b_missing:
        a_more, b_more = await asyncio.gather(_fetch(a, a_missing, a_load, now), _fetch(b, b_missing, b_load, now))
        a_found.update(a_more)
        b_found.update(b_more)
    elif a_missing:
        a_found.update(await _fetch(a, a_missing, a_load, now))
    elif b_missing:
        b_found.update(await _fetch(b, b_missing, b_load, now))
    return a_found, b_found


async def _through_local(local: LocalCache[int, V], ids: Iterable[int],
                         load: Callable[[list[int]], Awaitable[dict[int, V]]]) -> dict[int, V]:
    """The process-local copies, the rest from `load` (Redis, then Cassandra), remembered."""
    now = time.monotonic()
    found, missing = local.get_many(ids, now)
    if missing:
        found.update(await _fetch(local, missing, load, now))
    return found


async def _fetch(local: LocalCache[int, V], missing: list[int], load: Callable[[list[int]], Awaitable[dict[int, V]]],
                 now: float) -> dict[int, V]:
    """`missing` from `load`, kept in `local` unless an announcement overtook them (LocalCache)."""
    loaded: dict[int, V] = {}
    epoch = local.fetching(missing)
    try:
        loaded = await load(missing)
    finally:
        local.fetched(missing, loaded, epoch, now)
    return loaded
