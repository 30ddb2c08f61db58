"""Fixed-window rate limits per user and per client IP, counted atomically in Redis.

    window w = floor(now / window_s)        key rl:{category}:{u|ip}:{who}:{w}
    |---- w ----|---- w+1 ----|              a request increments its window's counters; the
                  ^ reset = (w+1)*window_s   keys expire with their window

One Lua call increments the user's and the IP's counter together, so concurrent requests can
never both see "one left": Redis runs scripts one at a time. Counting with INCR is right here:
a rate limit counts attempts, and a request is never replayed by the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from adapters.redis_mux import Commands, Pooled
from adapters.redis_store import RateCheck
from pipeline.topology import RateLimit

_INCR_ALL = """
local out = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, ARGV[1]) end
  out[i] = n
end
return out
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_epoch_s: int
    retry_after_s: int

    def headers(self) -> dict[str, str]:
        h = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
             "X-RateLimit-Reset": str(self.reset_epoch_s)}
        if not self.allowed:
            h["Retry-After"] = str(self.retry_after_s)
        return h


def decide(limit: RateLimit, user_count: int | None, ip_count: int, now_s: float, window_s: int) -> Decision:
    """Pure: the verdict for counts that already include this request."""
    reset = (int(now_s) // window_s + 1) * window_s
    retry_after = max(1, reset - int(now_s))
    over_ip = ip_count > limit.per_ip
    if user_count is None:
        return Decision(not over_ip, limit.per_ip, max(0, limit.per_ip - ip_count), reset, retry_after)
    over_user = user_count > limit.per_user
    return Decision(not (over_user or over_ip), limit.per_user, max(0, limit.per_user - user_count),
                    reset, retry_after)


class RateLimiter:
    def __init__(self, client: aioredis.Redis, window_s: int, reads: Commands | None = None) -> None:
        self._incr = client.register_script(_INCR_ALL)
        self.commands = reads or Pooled(client)  # the API's multiplexed connection (redis_mux.py)
        self.window_s = window_s

    def check(self, category: str, limit: RateLimit, user_id: int | None, ip: str, now_s: float) -> RateCheck:
        """The counters this request increments, for a command that does it along with its own
        work (the home read); `decision` turns their new values into the verdict."""
        window = int(now_s) // self.window_s
        keys = [f"rl:{category}:ip:{ip}:{window}"]
        limits = [limit.per_ip]
        if user_id is not None:
            keys.insert(0, f"rl:{category}:u:{user_id}:{window}")
            limits.insert(0, limit.per_user)
        return RateCheck(keys, self.window_s * 1000 + 1000, limits)

    def decision(self, limit: RateLimit, user_id: int | None, counts: list[int], now_s: float) -> Decision:
        return decide(limit, counts[0] if user_id is not None else None, counts[-1], now_s, self.window_s)

    async def hit(self, category: str, limit: RateLimit, user_id: int | None, ip: str, now_s: float) -> Decision:
        check = self.check(category, limit, user_id, ip, now_s)
        counts = await self.commands.script(self._incr, check.keys, [check.expire_ms])
        return self.decision(limit, user_id, [int(n) for n in counts], now_s)
