"""Rate limits and idempotency records on the real Redis, under concurrency."""

import asyncio
import secrets

from adapters.idempotency import IdempotencyStore, fingerprint
from adapters.ratelimit import RateLimiter
from pipeline.topology import RateLimit


async def test_rate_limiter_allows_exactly_the_limit_under_concurrency(redis_client):
    limiter = RateLimiter(redis_client, window_s=900)
    limit = RateLimit(per_user=50, per_ip=10_000)
    user = secrets.randbelow(10**12)
    decisions = await asyncio.gather(*(limiter.hit("t", limit, user, "10.0.0.1", 1_000_000.0) for _ in range(200)))
    assert sum(d.allowed for d in decisions) == 50
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(50))


async def test_windows_are_separate(redis_client):
    limiter = RateLimiter(redis_client, window_s=60)
    limit = RateLimit(per_user=1, per_ip=100)
    user = secrets.randbelow(10**12)
    assert (await limiter.hit("t", limit, user, "ip", 120.0)).allowed
    assert not (await limiter.hit("t", limit, user, "ip", 179.0)).allowed
    assert (await limiter.hit("t", limit, user, "ip", 180.0)).allowed
    ttl = await redis_client.pttl(f"rl:t:u:{user}:2")
    assert 0 < ttl <= 61_000


async def test_idempotency_lifecycle(redis_client):
    store = IdempotencyStore(redis_client, ttl_s=3600)
    key = store.key(1, f"k{secrets.token_hex(4)}")
    fp = fingerprint("POST", "/v1/tweets", b'{"text":"x"}')
    first = await store.begin(key, fp, [11, 12], now_ms=1000)
    assert first.outcome == "new" and first.ids == [11, 12]
    assert (await store.begin(key, fp, [21, 22], now_ms=2000)).outcome == "busy"
    assert (await store.begin(key, "other", [21, 22], now_ms=2000)).outcome == "mismatch"
    await store.release(key)  # the broker did not acknowledge
    resumed = await store.begin(key, fp, [31, 32], now_ms=3000)
    assert resumed.outcome == "resume" and resumed.ids == [11, 12], "a retry re-sends the same ids"
    await store.finish(key, {"status": "accepted", "tweet_id": 12})
    done = await store.begin(key, fp, [41, 42], now_ms=4000)
    assert done.outcome == "done" and done.response == {"status": "accepted", "tweet_id": 12}
    assert 0 < await redis_client.ttl(key) <= 3600


async def test_idempotency_lease_expires_when_its_holder_dies(redis_client):
    store = IdempotencyStore(redis_client, ttl_s=3600)
    key = store.key(2, "crashed")
    await redis_client.delete(key)
    await store.begin(key, "fp", [1], now_ms=0)
    assert (await store.begin(key, "fp", [2], now_ms=29_000)).outcome == "busy"
    taken = await store.begin(key, "fp", [2], now_ms=31_000)
    assert taken.outcome == "resume" and taken.ids == [1]
