"""The aiohttp application: routes from the OpenAPI document, auth and rate limits, clients in cleanup_ctx."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from adapters.cassandra_store import CassandraStore
from adapters.graph_cache import GraphCache
from adapters.hot_cache import CachedReads, HotCache
from adapters.idempotency import IdempotencyStore
from adapters.kafka import EventProducer
from adapters.ratelimit import RateLimiter
from adapters.redis_mux import Multiplexed
from adapters.redis_store import TimelineCache
from api import contract, moderation, notifications, reads, writes
from api.auth import Authenticator
from api.errors import ApiError, error_middleware, rate_limited
from api.home import HomeTimelines
from api.keys import (AUTH, CASSANDRA, HOME, LIMITER, OPENAPI, OPERATION, OPERATIONS, RATE_CHECK, RATE_DECISION,
                      ROLES, SETTINGS, TIMELINES, TOPOLOGY, USER_ID, VIEWS, WRITER)
from pipeline.settings import Settings
from pipeline.snowflake import Snowflake
from pipeline.topology import load_topology

# Request bodies larger than this are refused with 413 before they are read: the largest valid
# body (a tweet with four media items and their alt texts) is well under 16 KiB.
MAX_BODY_BYTES = 64 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HANDLERS: dict[str, Handler] = {
    "healthz": reads.healthz,
    "openapi": reads.openapi,
    "homeTimeline": reads.home_timeline,
    "getTweet": reads.get_tweet,
    "conversation": reads.conversation,
    "userTweets": reads.user_tweets,
    "getUser": reads.profile,
    "followers": reads.followers,
    "following": reads.following,
    "relationship": reads.relationship,
    "trends": reads.trends,
    "likingUsers": reads.liking_users,
    "retweetedBy": reads.retweeted_by,
    "likedTweets": reads.liked_tweets,
    "notifications": notifications.notifications,
    "unreadCount": notifications.unread_count,
    "markNotificationsRead": notifications.mark_read,
    "overrideVerdict": moderation.override_verdict,
    "getVerdict": moderation.get_verdict,
    "reviewQueue": moderation.review_queue,
    "registerUser": writes.register_user,
    "updateProfile": writes.update_profile,
    "postTweet": writes.post_tweet,
    "deleteTweet": writes.delete_tweet,
    "likeTweet": writes.like_tweet,
    "unlikeTweet": writes.unlike_tweet,
    "retweet": writes.retweet,
    "undoRetweet": writes.undo_retweet,
    "follow": writes.follow,
    "unfollow": writes.unfollow,
    "block": writes.block,
    "unblock": writes.unblock,
    "mute": writes.mute,
    "unmute": writes.unmute,
}


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[error_middleware, guard], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[TOPOLOGY] = load_topology(settings.topology_path)
    app[AUTH] = Authenticator(settings)  # fails fast on a missing or weak JWT secret
    doc, operations = contract.load()
    app[OPENAPI] = doc
    app[OPERATIONS] = {}
    for op in operations:
        app.router.add_route(op.method, op.path, HANDLERS[op.operation_id], name=op.operation_id)
        app[OPERATIONS][op.operation_id] = op
    app.cleanup_ctx.append(_clients)
    return app


async def _clients(app: web.Application) -> AsyncIterator[None]:
    settings, topology = app[SETTINGS], app[TOPOLOGY]
    tun, policy = topology.tunables, topology.api
    app[CASSANDRA] = await CassandraStore.open(settings)
    # Every request's lookups share one multiplexed connection; writes and rebuilds use the pool.
    lookups = Multiplexed(settings.redis_url, tracking=True)
    app[TIMELINES] = TimelineCache.from_url(settings.redis_url, tun.timeline_cap, lookups)
    app[VIEWS] = CachedReads(app[CASSANDRA], HotCache(app[TIMELINES].redis, lookups))
    app[HOME] = HomeTimelines(app[CASSANDRA], app[TIMELINES], GraphCache(app[TIMELINES].redis),
                              tun.rebuild_per_author, tun.fanout)
    app[LIMITER] = RateLimiter(app[TIMELINES].redis, policy.window_s, lookups)
    producer = EventProducer(settings, topology, **{"message.timeout.ms": policy.produce_timeout_ms,
                                                    "linger.ms": policy.produce_linger_ms})
    app[WRITER] = writes.Writer(
        producer, IdempotencyStore(app[TIMELINES].redis, policy.idempotency_ttl_s),
        Snowflake(settings.worker_id),
        # librdkafka gives up at message.timeout.ms and reports it; this only backs that up.
        produce_timeout_s=policy.produce_timeout_ms / 1000 + 1,
    )
    yield
    producer.close()
    await lookups.aclose()
    await app[TIMELINES].close()
    await app[CASSANDRA].close()


# Operations whose handler counts the request in its own first Redis command (one round trip less
# per request on the hottest read; bench/fanout.py): they read request[RATE_CHECK], and raise
# 429 themselves (api/reads.rate_decision) before doing any work when over a limit.
COUNTS_OWN_RATE = frozenset({"homeTimeline"})


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate, then count the request against its user's and its IP's rate limits."""
    route = request.match_info.route
    op = request.app[OPERATIONS].get(route.name or "")
    if op is None:  # 404/405 from the router
        return await handler(request)
    request[OPERATION] = op
    user_id: int | None = None
    auth_error: ApiError | None = None
    if op.authenticated:
        try:
            user_id, request[ROLES] = request.app[AUTH].identify(request)
            request[USER_ID] = user_id
        except ApiError as exc:
            auth_error = exc
    decision = None
    if op.rate_limit is not None:
        policy = request.app[TOPOLOGY].api
        limit, limiter = policy.rate_limits[op.rate_limit], request.app[LIMITER]
        ip, now = request.remote or "unknown", time.time()
        if op.operation_id in COUNTS_OWN_RATE and auth_error is None:
            request[RATE_CHECK] = (op.rate_limit, limit, limiter.check(op.rate_limit, limit, user_id, ip, now))
        else:
            decision = await limiter.hit(op.rate_limit, limit, user_id, ip, now)
    if auth_error is not None:
        raise auth_error
    if decision is not None and not decision.allowed:
        raise rate_limited(op.rate_limit, decision)
    try:
        response = await handler(request)
    except ApiError as exc:
        decision = decision or request.get(RATE_DECISION)
        if decision is not None:
            exc.headers = {**decision.headers(), **exc.headers}
        raise
    decision = decision or request.get(RATE_DECISION)
    if decision is not None:
        response.headers.update(decision.headers())
    return response
