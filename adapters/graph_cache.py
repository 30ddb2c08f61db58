"""Graph views in Redis: follower counts, the celebrity set, and when each reader last read.

    fc:{user}   STRING  exact follower count (written by the graph agent; Cassandra is the truth)
    celebs      SET     users whose tweets are pulled at read time, plus the sentinel "-" once
                        built from Cassandra's `celebrities` partition (absent = rebuild)
    active      ZSET    member = reader, score = epoch seconds of their last home-timeline read
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

SENTINEL = "-"
CELEBS = "celebs"
ACTIVE = "active"

# Adds or removes members only once the set was built, so it never looks complete when it is not.
_UPDATE_IF_BUILT = """
if redis.call('SISMEMBER', KEYS[1], '-') == 0 then return 0 end
for i = 1, #ARGV, 2 do
  if ARGV[i + 1] == '1' then redis.call('SADD', KEYS[1], ARGV[i]) else redis.call('SREM', KEYS[1], ARGV[i]) end
end
return 1
"""


class GraphCache:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self._update = client.register_script(_UPDATE_IF_BUILT)

    async def set_follower_counts(self, counts: dict[int, int]) -> None:
        if counts:
            await self.redis.mset({f"fc:{u}": n for u, n in counts.items()})

    async def follower_count(self, user_id: int) -> int | None:
        raw = await self.redis.get(f"fc:{user_id}")
        return int(raw) if raw is not None else None

    async def update_celebrities(self, flags: dict[int, bool]) -> None:
        if flags:
            args: list[str] = []
            for user, is_celebrity in flags.items():
                args += [str(user), "1" if is_celebrity else "0"]
            await self._update(keys=[CELEBS], args=args)

    async def celebrities(self, load: Callable[[], Awaitable[set[int]]],
                          members: set[str] | None = None) -> set[int]:
        """The celebrity set; `members` is an SMEMBERS reply already fetched in a shared command."""
        found: set[str] = members if members is not None else set(await self.redis.smembers(CELEBS))  # type: ignore[arg-type]
        if SENTINEL in found:
            return {int(m) for m in found if m != SENTINEL}
        users = await load()
        await self.redis.sadd(CELEBS, SENTINEL, *[str(u) for u in users])
        return users

    async def touch_active(self, reader: int, now_s: float) -> None:
        await self.redis.zadd(ACTIVE, {str(reader): now_s})

    async def last_reads(self, users: list[int]) -> list[float | None]:
        if not users:
            return []
        scores = await self.redis.zmscore(ACTIVE, [str(u) for u in users])
        return [float(s) if s is not None else None for s in scores]
