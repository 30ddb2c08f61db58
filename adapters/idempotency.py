"""Idempotency-Key records in Redis: a retried write returns the first answer, no second event.

One hash per (user, key): the request's fingerprint, the ids assigned to it, its state and lease.

    begin  -> new      first time: ids stored, lease taken; the caller produces
           -> done     answered before: the stored response is returned, nothing produced
           -> busy     another request holds the lease: 409, try again shortly
           -> resume   an earlier attempt failed (503) or its process died: the same ids are
                       produced again, so a write that did reach Kafka is not duplicated
                       downstream (sinks are idempotent by id)
           -> mismatch same key, different request: 422
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

# A request holding the lease longer than this is presumed dead; the produce timeout is shorter.
LEASE_MS = 30_000

_BEGIN = """
local h = KEYS[1]
if redis.call('EXISTS', h) == 0 then
  redis.call('HSET', h, 'fp', ARGV[1], 'ids', ARGV[2], 'state', 'pending', 'lease', ARGV[3] + ARGV[4])
  redis.call('EXPIRE', h, ARGV[5])
  return {'new', ARGV[2]}
end
if redis.call('HGET', h, 'fp') ~= ARGV[1] then return {'mismatch', ''} end
local state = redis.call('HGET', h, 'state')
if state == 'done' then return {'done', redis.call('HGET', h, 'response')} end
if tonumber(redis.call('HGET', h, 'lease')) > tonumber(ARGV[3]) then return {'busy', ''} end
redis.call('HSET', h, 'state', 'pending', 'lease', ARGV[3] + ARGV[4])
return {'resume', redis.call('HGET', h, 'ids')}
"""


@dataclass(frozen=True)
class Begin:
    outcome: str  # new | done | busy | resume | mismatch
    ids: list[int]
    response: dict[str, object] | None


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\0".join([method.encode(), path.encode(), body])).hexdigest()


class IdempotencyStore:
    def __init__(self, client: aioredis.Redis, ttl_s: int) -> None:
        self.redis = client
        self.ttl_s = ttl_s
        self._begin = client.register_script(_BEGIN)

    @staticmethod
    def key(user_id: int, idem_key: str) -> str:
        return f"idem:{user_id}:{hashlib.sha256(idem_key.encode()).hexdigest()[:32]}"

    async def begin(self, key: str, fp: str, ids: list[int], now_ms: int) -> Begin:
        outcome, payload = await self._begin(
            keys=[key], args=[fp, orjson.dumps(ids).decode(), now_ms, LEASE_MS, self.ttl_s])
        outcome = outcome.decode() if isinstance(outcome, bytes) else outcome
        if outcome in ("new", "resume"):
            return Begin(outcome, [int(i) for i in orjson.loads(payload)], None)
        if outcome == "done":
            return Begin(outcome, [], orjson.loads(payload))
        return Begin(outcome, [], None)

    async def finish(self, key: str, response: dict[str, object]) -> None:
        await self.redis.hset(key, mapping={"state": "done", "response": orjson.dumps(response).decode()})

    async def release(self, key: str) -> None:
        """The attempt failed (e.g. broker down): let a retry resume at once, with the same ids."""
        await self.redis.hset(key, mapping={"state": "failed", "lease": 0})
