"""Read endpoints: health, the OpenAPI document, the home timeline."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from adapters.cassandra_store import CassandraStore
from api.errors import bad_request, json_response
from api.keys import CASSANDRA, HOME, OPENAPI, TIMELINES, USER_ID
from pipeline import timeline
from pipeline.model import Tweet, User


async def healthz(request: web.Request) -> web.Response:
    await request.app[TIMELINES].redis.ping()
    return json_response({"status": "ok"})


async def openapi(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI])


# Filtering (blocks, mutes, deletes) may thin a page out; at most this many extra reads refill it.
REFILL_ROUNDS = 3


async def home_timeline(request: web.Request) -> web.Response:
    reader = request[USER_ID]
    limit = int_param(request, "limit", timeline.DEFAULT_PAGE, 1, timeline.MAX_PAGE)
    max_id = id_param(request, "max_id")
    since_id = id_param(request, "since_id")
    cass, home = request.app[CASSANDRA], request.app[HOME]
    hidden, following = await cass.relations_of(reader)
    items: list[dict[str, Any]] = []
    examined: list[int] = []
    cursor = max_id
    for _ in range(REFILL_ROUNDS):
        ids = await home.page(reader, following, limit, cursor, since_id)
        if not ids:
            break
        examined += ids
        items += [t for t in await hydrate(cass, ids) if int(t["author_id"]) not in hidden]
        if len(items) >= limit or len(ids) < limit:
            break
        cursor = ids[-1] - 1
    items = items[:limit]
    meta: dict[str, Any] = {"count": len(items)}
    if items:
        last = int(items[-1]["id_str"]) if len(items) == limit else examined[-1]
        meta["next_max_id"] = str(last - 1)
        meta["newest_id"] = items[0]["id_str"]
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
    if tweet.media:
        out["media"] = list(tweet.media)
    return out


def int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise bad_request(name, f"{name} must be an integer from {lo} to {hi}")
    return int(raw)


def id_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 19 or int(raw) >= 1 << 63:
        raise bad_request(name, f"{name} must be a tweet id (a decimal 64-bit integer)")
    return int(raw)
