"""Read endpoints: health, the OpenAPI document, the home timeline."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from adapters.hot_cache import CachedReads
from api.errors import ApiError, bad_request, json_response, rate_limited
from api.keys import CASSANDRA, HOME, LIMITER, OPENAPI, RATE_CHECK, RATE_DECISION, TIMELINES, TOPOLOGY, USER_ID, VIEWS
from api.writes import path_id
from pipeline import timeline
from pipeline.counts import Counts
from pipeline.model import Tweet, User
from pipeline.visibility import Viewer, can_see_author, shows_in_lists


async def healthz(request: web.Request) -> web.Response:
    await request.app[TIMELINES].redis.ping()
    return json_response({"status": "ok"})


async def openapi(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI])


# Filtering (visibility, blocks, mutes, deletes) may thin a page out; at most this many extra
# reads refill it.
REFILL_ROUNDS = 3

# (tweet or retweet entry, its author, and for a retweet: the original and its author), and the
# engagement counts of the tweets involved
Hydrated = tuple[Tweet, User | None, tuple[Tweet, User | None] | None, Mapping[int, Counts]]


async def home_timeline(request: web.Request) -> web.Response:
    reader = request[USER_ID]
    limit, max_id, since_id = page_params(request)
    views, home = request.app[VIEWS], request.app[HOME]
    # The first page comes with the viewer and the rate-limit count in the same Redis round trip;
    # refills reuse the viewer.
    check = request.get(RATE_CHECK)
    viewer, page0 = await home.page(reader, views, limit, max_id, since_id, rate=check[2] if check else None,
                                    on_counts=(lambda counts: rate_decision(request, counts)) if check else None)
    first: list[int] | None = page0

    async def fetch(cursor: int | None) -> list[int]:
        nonlocal first
        if first is not None and cursor == max_id:
            ids, first = first, None
            return ids
        return (await home.page(reader, views, limit, cursor, since_id, viewer))[1]

    return await visible_page(views, viewer, fetch, limit, max_id, listed=True)


def rate_decision(request: web.Request, counts: list[int]) -> None:
    """The verdict from the counters a COUNTS_OWN_RATE handler's command returned (api/app.py),
    kept for the guard's headers; 429 when over a limit."""
    category, limit, _check = request[RATE_CHECK]
    decision = request.app[LIMITER].decision(limit, request.get(USER_ID), counts, time.time())
    request[RATE_DECISION] = decision
    if not decision.allowed:
        raise rate_limited(category, decision)


async def user_tweets(request: web.Request) -> web.Response:
    cass, views = request.app[CASSANDRA], request.app[VIEWS]
    author = await visible_author(request)
    limit, max_id, since_id = page_params(request)
    with_replies = bool_param(request, "include_replies", False)
    with_retweets = bool_param(request, "include_retweets", True)
    viewer = await views.viewer(request[USER_ID])

    async def fetch(cursor: int | None) -> list[int]:
        ids = await cass.recent_tweet_ids(author.user_id, limit, cursor)
        return timeline.page(ids, limit, None, since_id)

    def keep(tweet: Tweet) -> bool:
        return (with_replies or tweet.reply_to is None) and (with_retweets or tweet.retweet_of is None)

    return await visible_page(views, viewer, fetch, limit, max_id, listed=False, keep=keep)


async def get_tweet(request: web.Request) -> web.Response:
    _viewer, found = await visible_tweet(request)
    return json_response({"data": render(found)})


async def conversation(request: web.Request) -> web.Response:
    """Replies to a tweet, oldest first; cursor `after` (the last reply id of the previous page)."""
    cass, views = request.app[CASSANDRA], request.app[VIEWS]
    limit = int_param(request, "limit", timeline.DEFAULT_PAGE, 1, timeline.MAX_PAGE)
    after = id_param(request, "after")
    viewer, root = await visible_tweet(request)
    ids = await cass.replies(root[0].tweet_id, after, limit)
    items = [render(h) for h in await hydrate(views, ids) if allowed(shows_in_lists, viewer, h)]
    meta: dict[str, Any] = {"count": len(items)}
    if len(ids) == limit:
        meta["next_after"] = str(ids[-1])
    return json_response({"data": items, "meta": meta})


async def visible_page(views: CachedReads, viewer: Viewer, fetch: Callable[[int | None], Awaitable[list[int]]],
                       limit: int, max_id: int | None, listed: bool,
                       keep: Callable[[Tweet], bool] = lambda _t: True) -> web.Response:
    """A page of tweets the viewer may see, refilled when filtering thinned it out."""
    rule = shows_in_lists if listed else can_see_author
    items: list[dict[str, Any]] = []
    last_examined: int | None = None
    cursor = max_id
    for _ in range(REFILL_ROUNDS):
        ids = await fetch(cursor)
        if not ids:
            break
        last_examined = ids[-1]
        items += [render(h) for h in await hydrate(views, ids) if allowed(rule, viewer, h) and keep(h[0])]
        if len(items) >= limit or len(ids) < limit:
            break
        cursor = ids[-1] - 1
    items = items[:limit]
    meta: dict[str, Any] = {"count": len(items)}
    if items:
        last = int(items[-1]["id_str"]) if len(items) == limit else (last_examined or int(items[-1]["id_str"]))
        meta["next_max_id"] = str(last - 1)
        meta["newest_id"] = items[0]["id_str"]
    return json_response({"data": items, "meta": meta})


async def hydrate(views: CachedReads, ids: list[int]) -> list[Hydrated]:
    """Live tweets with their authors, in the order of `ids`; a retweet entry comes with its
    original, and one whose original is gone drops out like a deleted tweet."""
    # Lookups that do not depend on each other leave together: the API's Redis connection sends
    # what is asked in one turn of the event loop in one write (adapters/redis_mux.py).
    tweets, counts = await views.tweets_and_counts(ids)
    retweeted = [t.retweet_of for t in tweets.values() if t.retweet_of is not None]
    originals = await views.get_tweets(retweeted) if retweeted else {}
    users, original_counts = await views.users_and_counts(
        [t.author_id for t in tweets.values()] + [t.author_id for t in originals.values()], originals)
    counts.update(original_counts)
    out: list[Hydrated] = []
    for i in ids:
        t = tweets.get(i)
        if t is None:
            continue
        if t.retweet_of is None:
            out.append((t, users.get(t.author_id), None, counts))
        elif t.retweet_of in originals:
            o = originals[t.retweet_of]
            out.append((t, users.get(t.author_id), (o, users.get(o.author_id)), counts))
    return out


def allowed(rule: Callable[[Viewer, int, bool], bool], viewer: Viewer, item: Hydrated) -> bool:
    """Whether the viewer may see the tweet (and a retweet's original): by the author rule, and
    only if moderation delivered it, unless the viewer wrote it (docs/MODERATION.md)."""
    tweet, author, original, _counts = item
    if not rule(viewer, tweet.author_id, _protected(author)) or not _released(viewer, tweet):
        return False
    return original is None or (rule(viewer, original[0].author_id, _protected(original[1]))
                                and _released(viewer, original[0]))


def _released(viewer: Viewer, tweet: Tweet) -> bool:
    return tweet.delivered or tweet.author_id == viewer.user_id


def render(item: Hydrated) -> dict[str, Any]:
    tweet, author, original, counts = item
    out = render_tweet(tweet, author, counts.get(tweet.tweet_id))
    if original is not None:
        out["retweeted_tweet"] = render_tweet(*original, counts.get(original[0].tweet_id))
    return out


# -- users and the graph -----------------------------------------------------------------------

async def profile(request: web.Request) -> web.Response:
    cass, views = request.app[CASSANDRA], request.app[VIEWS]
    user_id = path_id(request, "user_id")
    viewer = await views.viewer(request[USER_ID])
    user = (await views.get_users([user_id])).get(user_id)
    if user is None or (user_id != viewer.user_id and user_id in viewer.blocked_either_way):
        raise _not_found("user", user_id)
    counts = (await cass.follower_counts([user_id])).get(user_id)
    body = {**user.to_json(), "followers_count": counts.followers if counts else 0,
            "following_count": await cass.following_count(user_id)}
    return json_response({"data": body})


def _edge_list(table: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        cass = request.app[CASSANDRA]
        user = await visible_author(request)
        limit = int_param(request, "limit", timeline.DEFAULT_PAGE, 1, timeline.MAX_PAGE)
        after = id_param(request, "after")
        ids = await cass.edge_page(table, user.user_id, after, limit)
        users = await request.app[VIEWS].get_users(ids)
        meta: dict[str, Any] = {"count": len(ids)}
        if len(ids) == limit:
            meta["next_after"] = str(ids[-1])
        return json_response({"data": [users[i].to_json() for i in ids if i in users], "meta": meta})

    return handler


followers = _edge_list("followers")
following = _edge_list("following")


async def relationship(request: web.Request) -> web.Response:
    cass = request.app[CASSANDRA]
    other = path_id(request, "user_id")
    if not (await request.app[VIEWS].get_users([other])):
        raise _not_found("user", other)
    return json_response({"data": {"user_id": str(other), **await cass.relationship(request[USER_ID], other)}})


async def visible_tweet(request: web.Request) -> tuple[Viewer, Hydrated]:
    """The viewer and the path's tweet if they may see it; else 404, as if absent."""
    views = request.app[VIEWS]
    tweet_id = path_id(request, "tweet_id")
    viewer = await views.viewer(request[USER_ID])
    found = await hydrate(views, [tweet_id])
    if not found or not allowed(can_see_author, viewer, found[0]):
        raise _not_found("tweet", tweet_id)
    return viewer, found[0]


async def visible_author(request: web.Request) -> User:
    """The path's user if the viewer may see their tweets and lists; else 404, as if absent."""
    views = request.app[VIEWS]
    user_id = path_id(request, "user_id")
    viewer = await views.viewer(request[USER_ID])
    user = (await views.get_users([user_id])).get(user_id)
    if user is None or not can_see_author(viewer, user_id, user.protected):
        raise _not_found("user", user_id)
    return user


def _protected(user: User | None) -> bool:
    return True if user is None else user.protected  # an author we cannot load is treated as private


def _not_found(kind: str, ident: int) -> ApiError:
    return ApiError(404, "not_found", f"{kind} {ident} does not exist", field=f"{kind}_id")


def render_tweet(tweet: Tweet, author: User | None, counts: Counts | None = None) -> dict[str, Any]:
    c = counts or Counts()
    out: dict[str, Any] = {
        "id": tweet.tweet_id, "id_str": str(tweet.tweet_id), "text": tweet.text,
        "created_at": tweet.created_at, "author_id": str(tweet.author_id),
        "author": author.to_json() if author else None,
        "public_metrics": {"like_count": c.get("likes"), "retweet_count": c.get("retweets"),
                           "reply_count": c.get("replies"), "quote_count": c.get("quotes")},
    }
    if tweet.reply_to is not None:
        out["reply_to"] = str(tweet.reply_to)
    if tweet.quote_of is not None:
        out["quote_of"] = str(tweet.quote_of)
    if tweet.media:
        out["media"] = list(tweet.media)
    out["possibly_sensitive"] = tweet.sensitive  # labelled by moderation: clients show a warning first
    if not tweet.delivered:  # only its author sees it, with why nobody else does
        out["withheld"] = {"action": tweet.moderation}
    return out


def page_params(request: web.Request) -> tuple[int, int | None, int | None]:
    return (int_param(request, "limit", timeline.DEFAULT_PAGE, 1, timeline.MAX_PAGE),
            id_param(request, "max_id"), id_param(request, "since_id"))


def int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise bad_request(name, f"{name} must be an integer from {lo} to {hi}")
    return int(raw)


def bool_param(request: web.Request, name: str, default: bool) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return default
    if raw not in ("true", "false"):
        raise bad_request(name, f"{name} must be true or false")
    return raw == "true"


def id_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 19 or int(raw) >= 1 << 63:
        raise bad_request(name, f"{name} must be an id (a decimal 64-bit integer)")
    return int(raw)


# -- engagement lists ------------------------------------------------------------------------

def _engaged_list(table: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        cass, views = request.app[CASSANDRA], request.app[VIEWS]
        limit = int_param(request, "limit", timeline.DEFAULT_PAGE, 1, timeline.MAX_PAGE)
        after = id_param(request, "after")
        viewer, tweet = await visible_tweet(request)
        ids = await cass.engaged_users(table, tweet[0].tweet_id, after, limit)
        users = await views.get_users(ids)
        data = [users[i].to_json() for i in ids if i in users and i not in viewer.blocked_either_way]
        meta: dict[str, Any] = {"count": len(data)}
        if len(ids) == limit:
            meta["next_after"] = str(ids[-1])
        return json_response({"data": data, "meta": meta})

    return handler


liking_users = _engaged_list("likes_by_tweet")
retweeted_by = _engaged_list("retweets_by_tweet")


async def liked_tweets(request: web.Request) -> web.Response:
    """A user's likes: private, readable by that user only (docs/ARCHITECTURE.md)."""
    user_id = path_id(request, "user_id")
    if user_id != request[USER_ID]:
        raise ApiError(403, "forbidden", "likes are private: only their owner may list them", field="user_id")
    cass, views = request.app[CASSANDRA], request.app[VIEWS]
    limit, max_id, _since = page_params(request)
    viewer = await views.viewer(user_id)

    async def fetch(cursor: int | None) -> list[int]:
        return await cass.liked_tweets(user_id, cursor, limit)

    return await visible_page(views, viewer, fetch, limit, max_id, listed=False)



# -- trends ----------------------------------------------------------------------------------

async def trends(request: web.Request) -> web.Response:
    """The latest snapshot the trending agent published (agents/trending.py), with sample tweets
    the viewer may see."""
    views = request.app[VIEWS]
    windows = [w.name for w in request.app[TOPOLOGY].tunables.trending.windows]
    region = request.query.get("region", "global")
    window = request.query.get("window", windows[0])
    if not (0 < len(region) <= 64 and region.replace("_", "").replace("-", "").isalnum()):
        raise bad_request("region", "region must be a region code or global")
    if window not in windows:
        raise bad_request("window", f"window must be one of {', '.join(windows)}")
    raw = await request.app[TIMELINES].redis.get(f"trends:{region}:{window}")
    snapshot = orjson.loads(raw) if raw else {"at": None, "warming_up": True, "trends": []}
    viewer = await views.viewer(request[USER_ID])
    sample_ids = [int(i) for t in snapshot["trends"] for i in t["samples"]]
    shown = {h[0].tweet_id: h for h in await hydrate(views, sample_ids) if allowed(shows_in_lists, viewer, h)}
    data = [{"rank": rank, "tag": t["tag"], "score": t["score"], "count": t["count"], "tweets": t["tweets"],
             "authors": t["authors"], "sample_tweets": [render(shown[int(i)]) for i in t["samples"] if int(i) in shown]}
            for rank, t in enumerate(snapshot["trends"], 1)]
    return json_response({"data": data, "meta": {"region": region, "window": window, "as_of": snapshot["at"],
                                                 "warming_up": snapshot["warming_up"], "count": len(data)}})
