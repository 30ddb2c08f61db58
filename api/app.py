"""The aiohttp application: clients opened in cleanup_ctx, routes, and the JSON error middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from adapters.cassandra_store import CassandraStore
from adapters.redis_store import TimelineCache
from api.auth import Authenticator
from api.errors import bad_request, error_middleware, json_response
from api.home import HomeTimelines
from pipeline import timeline
from pipeline.model import Tweet, User
from pipeline.settings import Settings
from pipeline.topology import Topology, load_topology

SETTINGS = web.AppKey("settings", Settings)
TOPOLOGY = web.AppKey("topology", Topology)
AUTH = web.AppKey("auth", Authenticator)
CASSANDRA = web.AppKey("cassandra", CassandraStore)
TIMELINES = web.AppKey("timelines", TimelineCache)
HOME = web.AppKey("home", HomeTimelines)

# Request bodies larger than this are refused with 413 before they are read.
MAX_BODY_BYTES = 64 * 1024


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[TOPOLOGY] = load_topology(settings.topology_path)
    app[AUTH] = Authenticator(settings)  # fails fast on a missing or weak JWT secret
    app.cleanup_ctx.append(_stores)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/v1/timelines/home", home_timeline)
    return app


async def _stores(app: web.Application) -> AsyncIterator[None]:
    settings, tun = app[SETTINGS], app[TOPOLOGY].tunables
    app[CASSANDRA] = await CassandraStore.open(settings)
    app[TIMELINES] = TimelineCache.from_url(settings.redis_url, tun.timeline_cap)
    app[HOME] = HomeTimelines(app[CASSANDRA], app[TIMELINES], tun.rebuild_per_author)
    yield
    await app[TIMELINES].close()
    await app[CASSANDRA].close()


async def healthz(request: web.Request) -> web.Response:
    await request.app[TIMELINES].redis.ping()
    return json_response({"status": "ok"})


async def home_timeline(request: web.Request) -> web.Response:
    reader = request.app[AUTH].user_id(request)
    limit = _int_param(request, "limit", timeline.DEFAULT_PAGE, 1, timeline.MAX_PAGE)
    max_id = _id_param(request, "max_id")
    since_id = _id_param(request, "since_id")
    ids = await request.app[HOME].page(reader, limit, max_id, since_id)
    items = await hydrate(request.app[CASSANDRA], ids)
    meta: dict[str, Any] = {"count": len(items)}
    if ids:
        meta["next_max_id"] = str(ids[-1] - 1)
        meta["newest_id"] = str(ids[0])
    return json_response({"data": items, "meta": meta})


async def hydrate(cass: CassandraStore, ids: list[int]) -> list[dict[str, Any]]:
    tweets = await cass.get_tweets(ids)
    users = await cass.get_users(t.author_id for t in tweets.values())
    return [render_tweet(tweets[i], users.get(tweets[i].author_id)) for i in ids if i in tweets]


def render_tweet(tweet: Tweet, author: User | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": tweet.tweet_id, "id_str": str(tweet.tweet_id), "text": tweet.text,
        "created_at": tweet.created_at, "author_id": str(tweet.author_id),
        "author": author.to_json() if author else None,
    }
    if tweet.reply_to is not None:
        out["reply_to"] = str(tweet.reply_to)
    if tweet.quote_of is not None:
        out["quote_of"] = str(tweet.quote_of)
    return out


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise bad_request(name, f"{name} must be an integer from {lo} to {hi}")
    return int(raw)


def _id_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 19 or int(raw) >= 1 << 63:
        raise bad_request(name, f"{name} must be a tweet id (a decimal 64-bit integer)")
    return int(raw)
