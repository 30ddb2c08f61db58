"""Notifications: grouped pages, the unread count, and the read mark (pipeline/notifications.py).

The read mark is the one write the API makes itself instead of producing an event: it is private
to its user, idempotent and monotonic (Cassandra keeps the largest mark), and nothing downstream
depends on it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from api.errors import ApiError, bad_request, json_response
from api.keys import CASSANDRA, USER_ID, VIEWS
from api.reads import allowed, hydrate, page_params, render
from pipeline import notifications as notes
from pipeline.visibility import can_see_author

# Unread notifications are counted up to this many (shown as "999+" by clients).
UNREAD_CAP = 1000
# Rows read per page of groups: a page of `limit` groups is formed from at most this many.
NOTIFICATION_ROWS_PER_GROUP = 10


async def notifications(request: web.Request) -> web.Response:
    """Grouped notifications, newest first. Groups are formed within the rows of one page, so a
    very large group may continue on the next page."""
    cass, views = request.app[CASSANDRA], request.app[VIEWS]
    me = request[USER_ID]
    limit, max_id, _since = page_params(request)
    viewer = await views.viewer(me)
    rows_wanted = limit * NOTIFICATION_ROWS_PER_GROUP
    rows, read_up_to = await asyncio.gather(cass.notifications(me, max_id, rows_wanted), cass.read_up_to(me))
    groups = notes.group(rows, read_up_to, visible=lambda n: n.actor_id not in viewer.hidden)
    if len(groups) > limit:  # the rows of the extra groups come again on the next page
        groups = groups[:limit]
    consumed = [i for g in groups for i in g.notification_ids]
    actors = await views.get_users({a for g in groups for a in g.actors[:notes.SHOWN_ACTORS]})
    tweets = {h[0].tweet_id: h for h in await hydrate(views, [g.tweet_id for g in groups if g.tweet_id is not None])}
    data = []
    for g in groups:
        item: dict[str, Any] = {
            "kind": g.kind, "id_str": str(g.latest_id), "unread": g.unread,
            "actors": [actors[a].to_json() for a in g.actors[:notes.SHOWN_ACTORS] if a in actors],
            "actor_count": len(g.actors), "others": g.others,
        }
        if g.tweet_id is not None:
            hydrated = tweets.get(g.tweet_id)
            if hydrated is None or not allowed(can_see_author, viewer, hydrated):
                continue  # the tweet is gone, or no longer visible to the recipient
            item["tweet"] = render(hydrated)
        data.append(item)
    meta: dict[str, Any] = {"count": len(data), "read_up_to": str(read_up_to)}
    if len(rows) == rows_wanted or len(groups) == limit:
        meta["next_max_id"] = str(min(consumed) - 1) if consumed else None
    return json_response({"data": data, "meta": meta})


async def unread_count(request: web.Request) -> web.Response:
    cass, views = request.app[CASSANDRA], request.app[VIEWS]
    me = request[USER_ID]
    viewer = await views.viewer(me)
    mark = await cass.read_up_to(me)
    rows = await cass.unread_notifications(me, mark, UNREAD_CAP)
    groups = notes.group(rows, mark, visible=lambda n: n.actor_id not in viewer.hidden)
    return json_response({"data": {"unread": sum(len(g.notification_ids) for g in groups),
                                   "unread_groups": len(groups), "capped": len(rows) == UNREAD_CAP}})




async def mark_read(request: web.Request) -> web.Response:
    cass = request.app[CASSANDRA]
    me = request[USER_ID]
    raw = await request.read()
    up_to: int | None = None
    if raw.strip():
        if request.content_type != "application/json":
            raise ApiError(415, "unsupported_media_type", "send the body as application/json", field="Content-Type")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise bad_request("(body)", f"not valid JSON: {exc}") from None
        if not isinstance(body, dict) or set(body) - {"up_to"}:
            raise bad_request("(body)", "the body may only hold up_to")
        if "up_to" in body:
            value = body["up_to"]
            if not isinstance(value, str) or not value.isdigit() or len(value) > 19 or value.startswith("0") \
                    or int(value) >= 1 << 63:
                raise bad_request("up_to", "up_to must be a notification id (a decimal 64-bit integer string)")
            up_to = int(value)
    if up_to is None:
        newest = await cass.notifications(me, None, 1)
        up_to = newest[0].notification_id if newest else 0
    if up_to > 0:
        await cass.mark_read(me, up_to)
    return json_response({"data": {"read_up_to": str(await cass.read_up_to(me))}})
