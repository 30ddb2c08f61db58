"""Graph views in Redis: follower counts, the celebrity set, and when each reader last read.

    fc:{user}   STRING  exact follower count (written by the graph agent; Cassandra is the truth)
    celebs      SET     users whose tweets are pulled at read time, plus the sentinel "-" once
                        built from Cassandra's `celebrities` partition (absent = rebuild)
    celebs:v    STRING  the set's version: a token never used before, replaced in the same
                        command as every change of the set, so that a reader holding the set
                        fetches it again only when it changed (redis_store._HOME_READ)
    active      ZSET    member = reader, score = epoch seconds of their last home-timeline read;
                        readers gone for longer than the activity window are pruned (prune_active);
                        plus the sentinel "-" at +inf once the set is known to hold every reader
                        whose timeline is built (absent = incomplete: repair_active)
    flg:{user}  STRING  the generation of the user's follower list: a token never used before,
                        replaced after each follow change (pipeline/fanout.FollowerLists)
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Iterable

import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis

from adapters import resp
from adapters.redis_store import TIMELINE_PREFIX, send_packed

SENTINEL = "-"
CELEBS = "celebs"
CELEBS_VERSION = "celebs:v"
ACTIVE = "active"

# KEYS[1] the celebrity set, KEYS[2] its version; ARGV (user, "1" or "0") pairs, then a fresh
# token. Adds or removes members only once the set was built, so it never looks complete when it
# is not; a change gives the set a new version (most calls change nothing: every follow batch
# flags its followees). Not built, the version is renewed all the same: a rebuild that read
# Cassandra before this change must not write what it read (_FILL_CELEBS).
_UPDATE_IF_BUILT = """
if redis.call('SISMEMBER', KEYS[1], '-') == 0 then
  redis.call('SET', KEYS[2], ARGV[#ARGV])
  return 0
end
local changed = 0
for i = 1, #ARGV - 1, 2 do
  if ARGV[i + 1] == '1' then
    changed = changed + redis.call('SADD', KEYS[1], ARGV[i])
  else
    changed = changed + redis.call('SREM', KEYS[1], ARGV[i])
  end
end
if changed > 0 then redis.call('SET', KEYS[2], ARGV[#ARGV]) end
return 1
"""

# KEYS = n follower-count keys, then the same users' generation keys; ARGV[1] a fresh token.
# Per user: {count or "", generation}; a missing generation (never set, evicted, FLUSHALL) is set
# to a new one here, atomically, so every list cached before it is out of date.
_FANOUT_STATE = """
local n = #KEYS / 2
local out = {}
for i = 1, n do
  local gen = redis.call('GET', KEYS[n + i])
  if not gen then
    gen = ARGV[1] .. ':' .. i
    redis.call('SET', KEYS[n + i], gen)
  end
  out[i] = {redis.call('GET', KEYS[i]) or '', gen}
end
return out
"""


# KEYS[1] the celebrity set, KEYS[2] its version; ARGV[1] the version read before Cassandra was
# ("" for none), ARGV[2] a fresh token, then the members read. Builds the set only if its version
# did not move meanwhile (a change came in between: the read may miss it); 1 when the set is
# built (by this call or another), 0 when the caller should read again.
_FILL_CELEBS = """
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[1] then return 0 end
if redis.call('SISMEMBER', KEYS[1], '-') == 1 then return 1 end
redis.call('SADD', KEYS[1], '-')
for i = 3, #ARGV, 1000 do
  redis.call('SADD', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""

# Reads of Cassandra a rebuild of the celebrity set makes while changes keep coming in between;
# then it serves the last read without building the set (the next reader tries again).
CELEBS_FILL_ATTEMPTS = 3

# KEYS[1] a sorted set; ARGV[1] a score, ARGV[2] a count. Removes up to that many members scored
# below the score and returns how many it removed: a bounded step, so pruning a large backlog never
# holds Redis (which runs one script at a time) for long.
_PRUNE_BELOW = """
local gone = redis.call('ZRANGE', KEYS[1], '-inf', '(' .. ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
if #gone > 0 then redis.call('ZREM', KEYS[1], unpack(gone)) end
return #gone
"""

# Members removed per script call when pruning.
PRUNE_STEP = 1000

# The last-read set's completeness. Only a home read builds a timeline, and the same command marks
# the reader active (redis_store._HOME_READ), so the set holds every reader with a built timeline,
# which is what lets fan-out skip the others, until the set itself is lost (evicted,
# flushed) and a read starts it again: then it holds only the readers since, and a pushed
# tweet would miss the built timelines of the others. So the sentinel marks the set complete; a
# set without it is repaired by a scan of the built timelines, each reader added as read now, and
# the sentinel is written only if the set was not lost again meanwhile (the repair's own marker,
# a member, is still there). Until then fan-out pushes to every built timeline.
# KEYS[1] the set; ARGV[1] the repair's marker, ARGV[2] now (s). 0 if the set is complete already.
_REPAIR_BEGIN = """
if redis.call('ZSCORE', KEYS[1], '-') then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""

# KEYS[1] the set; ARGV[1] the marker, ARGV[2] now (s), then readers. Adds them (a later read's
# score is kept) unless the marker is gone (the set was lost since the repair began): then 0.
_REPAIR_ADD = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local pairs = {}
for i = 3, #ARGV do
  pairs[#pairs + 1] = ARGV[2]
  pairs[#pairs + 1] = ARGV[i]
  if #pairs == 2000 or i == #ARGV then
    redis.call('ZADD', KEYS[1], 'GT', unpack(pairs))
    pairs = {}
  end
end
return 1
"""

# KEYS[1] the set; ARGV[1] the marker. Completes the set if the marker survived the scan.
_REPAIR_END = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], '+inf', '-')
return 1
"""

# Timeline keys per SCAN step (and readers per _REPAIR_ADD call) when repairing the last-read set.
REPAIR_SCAN_COUNT = 1000


def fresh_token() -> str:
    """A value no generation key ever held: nanoseconds plus randomness (so a flushed and
    re-counted key cannot come back to an old value)."""
    return f"{time.time_ns():x}.{secrets.token_hex(4)}"


class GraphCache:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self._update = client.register_script(_UPDATE_IF_BUILT)
        self._fanout_state = client.register_script(_FANOUT_STATE)
        self._prune_below = client.register_script(_PRUNE_BELOW)
        self._fill_celebs = client.register_script(_FILL_CELEBS)
        self._repair_begin = client.register_script(_REPAIR_BEGIN)
        self._repair_add = client.register_script(_REPAIR_ADD)
        self._repair_end = client.register_script(_REPAIR_END)

    async def set_follower_counts(self, counts: dict[int, int]) -> None:
        if counts:
            await self.redis.mset({f"fc:{u}": n for u, n in counts.items()})

    async def follower_count(self, user_id: int) -> int | None:
        raw = await self.redis.get(f"fc:{user_id}")
        return int(raw) if raw is not None else None

    async def fill_follower_counts(self, counts: dict[int, int]) -> None:
        """Cache counts read from Cassandra, never over a count the graph agent wrote meanwhile."""
        if counts:
            pipe = self.redis.pipeline(transaction=False)
            for u, n in counts.items():
                pipe.set(f"fc:{u}", n, nx=True)
            await pipe.execute()

    async def fanout_state(self, users: list[int]) -> dict[int, tuple[int | None, str]]:
        """Per user, in one command: the cached follower count (None if not cached) and the
        generation of their follower list."""
        if not users:
            return {}
        keys = [f"fc:{u}" for u in users] + [f"flg:{u}" for u in users]
        replies = await self._fanout_state(keys=keys, args=[fresh_token()])
        return {u: (int(count) if count != "" else None, gen) for u, (count, gen) in zip(users, replies)}

    async def new_follower_generations(self, users: Iterable[int]) -> None:
        """After follow changes are in Cassandra: every cached follower list of these users is out of date."""
        token = fresh_token()
        mapping = {f"flg:{u}": token for u in set(users)}
        if mapping:
            await self.redis.mset(mapping)

    async def update_celebrities(self, flags: dict[int, bool]) -> None:
        if flags:
            args: list[str] = []
            for user, is_celebrity in flags.items():
                args += [str(user), "1" if is_celebrity else "0"]
            await self._update(keys=[CELEBS, CELEBS_VERSION], args=[*args, fresh_token()])

    async def celebrities(self, load: Callable[[], Awaitable[set[int]]],
                          members: set[str] | None = None) -> set[int]:
        """The celebrity set; `members` is an SMEMBERS reply already fetched in a shared command.
        Not built, it is read from Cassandra and built, unless a change came in meanwhile: then
        read again (the graph agent writes Cassandra before it renews the version)."""
        found: set[str] = members if members is not None else set(await self.redis.smembers(CELEBS))  # type: ignore[arg-type]
        if SENTINEL in found:
            return {int(m) for m in found if m != SENTINEL}
        for _attempt in range(CELEBS_FILL_ATTEMPTS):
            before = await self.redis.get(CELEBS_VERSION)
            users = await load()
            if await self._fill_celebs(keys=[CELEBS, CELEBS_VERSION],
                                       args=[before or "", fresh_token(), *map(str, users)]):
                return users
        return users

    async def touch_active(self, reader: int, now_s: float) -> None:
        await self.redis.zadd(ACTIVE, {str(reader): now_s})

    async def prune_active(self, before_s: float, step: int = PRUNE_STEP) -> int:
        """Forget readers whose last read is older than `before_s` (epoch seconds), `step` at a
        time; returns how many were forgotten. Without it the set grows by every reader ever."""
        total = 0
        while True:
            removed = int(await self._prune_below(keys=[ACTIVE], args=[before_s, step]))
            total += removed
            if removed < step:
                return total

    async def last_reads(self, users: Iterable[int]) -> tuple[bool, npt.NDArray[np.float64]]:
        """Whether the last-read set is complete (see _REPAIR_BEGIN), and each user's last read
        (epoch seconds; NaN if not in the set), in one command."""
        return await self.last_reads_encoded([resp.bulk(u) for u in users])

    async def last_reads_encoded(self, users: list[bytes]) -> tuple[bool, npt.NDArray[np.float64]]:
        """last_reads of users given as RESP bulk strings (pipeline/fanout.UserIndex keeps them):
        a fan-out batch looks up ~100,000 followers, which hiredis packs at ~200 ns each."""
        command = b"".join([b"*%d\r\n" % (3 + len(users)), *map(resp.bulk, ("ZMSCORE", ACTIVE, SENTINEL)), *users])
        complete, *scores = await send_packed(self.redis, command)
        return complete is not None, np.array([float(s) if s is not None else np.nan for s in scores], dtype=np.float64)

    async def repair_active(self, now_s: float, scan_count: int = REPAIR_SCAN_COUNT) -> bool:
        """Make the last-read set complete again (see _REPAIR_BEGIN): every reader whose timeline
        is built is added as having read at `now_s`, then the sentinel. False if the set was
        lost during the scan (the caller tries again later); True if it is complete."""
        marker = f"?{fresh_token()}"
        if not await self._repair_begin(keys=[ACTIVE], args=[marker, now_s]):
            return True
        readers: list[str] = []
        n = len(TIMELINE_PREFIX)
        async for key in self.redis.scan_iter(match=f"{TIMELINE_PREFIX}*", count=scan_count):
            if key[n:].isdigit():  # not a rebuild lock (hl:{user}:lock)
                readers.append(key[n:])
            if len(readers) >= scan_count:
                if not await self._repair_add(keys=[ACTIVE], args=[marker, now_s, *readers]):
                    return False
                readers = []
        if readers and not await self._repair_add(keys=[ACTIVE], args=[marker, now_s, *readers]):
            return False
        return bool(await self._repair_end(keys=[ACTIVE], args=[marker]))
