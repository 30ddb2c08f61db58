"""Typed application keys: what the app holds for the length of its life."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from adapters.cassandra_store import CassandraStore
from adapters.hot_cache import CachedReads
from adapters.ratelimit import RateLimiter
from adapters.redis_store import TimelineCache
from api.auth import Authenticator
from api.contract import Operation
from api.home import HomeTimelines
from pipeline.settings import Settings
from pipeline.topology import Topology

SETTINGS = web.AppKey("settings", Settings)
TOPOLOGY = web.AppKey("topology", Topology)
AUTH = web.AppKey("auth", Authenticator)
OPENAPI = web.AppKey("openapi", dict[str, Any])
OPERATIONS = web.AppKey("operations", dict[str, Operation])
CASSANDRA = web.AppKey("cassandra", CassandraStore)
VIEWS = web.AppKey("views", CachedReads)  # tweets, users, viewers through the Redis caches
TIMELINES = web.AppKey("timelines", TimelineCache)
HOME = web.AppKey("home", HomeTimelines)
LIMITER = web.AppKey("limiter", RateLimiter)
WRITER = web.AppKey("writer", object)  # api.writes.Writer (typed loosely to avoid an import cycle)

# Per request: the authenticated user id and the operation being served.
USER_ID = "starling.user_id"
ROLES = "starling.roles"  # frozenset[str]: the token's roles ("moderator")
OPERATION = "starling.operation"
# A handler that counts its request in its own first Redis command (the home read) finds the
# pending check under RATE_CHECK and leaves its verdict under RATE_DECISION for the guard.
RATE_CHECK = "starling.rate_check"  # (category, RateLimit, adapters.redis_store.RateCheck)
RATE_DECISION = "starling.rate_decision"  # adapters.ratelimit.Decision
