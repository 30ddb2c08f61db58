"""Moderator endpoints: override a verdict, read one, list the review queue (docs/MODERATION.md).

Only tokens carrying the `moderator` role may override or list; a tweet's author may also read its
verdict (why their tweet is labelled or withheld). An override is an event like every write: the
moderation agent applies it in order with the author's tweets, and it propagates from there (a
tweet restored is delivered, one blocked is withdrawn from timelines, counts and trends).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.auth import require_role
from api.errors import ApiError, json_response
from api.keys import CASSANDRA, OPERATION, ROLES, USER_ID, VIEWS
from api.reads import hydrate, page_params, render
from api.writes import _ctx, _require_registered, event, id_pair, path_id, read_body

MODERATOR = "moderator"


async def override_verdict(request: web.Request) -> web.Response:
    writer, cass, me = _ctx(request)
    require_role(request[ROLES], MODERATOR)
    tweet_id = path_id(request, "tweet_id")
    body, raw = await read_body(request, request[OPERATION])
    await _require_registered(cass, me)  # the override's actor, as for every event
    state = (await cass.tweet_states([tweet_id])).get(tweet_id)
    if state is None or state.deleted:
        raise ApiError(404, "not_found", f"tweet {tweet_id} does not exist", field="tweet_id")
    data = {"tweet_id": str(tweet_id), "author_id": str(state.author_id), "action": body["action"]}
    if body.get("note"):
        data["note"] = body["note"]
    return await writer.accept(request, me, 1, lambda ids, now: (
        event(ids[0], "verdict.overridden", me, now, data),
        {**id_pair("tweet_id", tweet_id), "action": body["action"]}), raw)


async def get_verdict(request: web.Request) -> web.Response:
    cass = request.app[CASSANDRA]
    tweet_id = path_id(request, "tweet_id")
    found = (await cass.verdicts([tweet_id])).get(tweet_id)
    # The author may see why; anyone else who is not a moderator learns nothing, not even existence.
    if found is None or (MODERATOR not in request[ROLES] and found["author_id"] != request[USER_ID]):
        raise ApiError(404, "not_found", f"no verdict for tweet {tweet_id}", field="tweet_id")
    return json_response({"data": verdict_json(found)})


async def review_queue(request: web.Request) -> web.Response:
    """Tweets held for review (hide), newest first, with their verdicts; cursor max_id."""
    require_role(request[ROLES], MODERATOR)
    cass, views = request.app[CASSANDRA], request.app[VIEWS]
    limit, max_id, _since = page_params(request)
    rows = await cass.review_queue(max_id, limit)
    ids = [r["tweet_id"] for r in rows]
    verdicts = await cass.verdicts(ids)
    shown = {h[0].tweet_id: h for h in await hydrate(views, ids)}  # deleted ones drop out
    data = [{"tweet": render(shown[i]), "verdict": verdict_json(verdicts[i])}
            for i in ids if i in shown and i in verdicts]
    meta: dict[str, Any] = {"count": len(data)}
    if len(rows) == limit:
        meta["next_max_id"] = str(ids[-1] - 1)
    return json_response({"data": data, "meta": meta})


def verdict_json(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        **id_pair("tweet_id", row["tweet_id"]), "author_id": str(row["author_id"]), "action": row["action"],
        "source": row["source"], "reasons": list(row["reasons"] or []), "scores": dict(row["scores"] or {}),
        "evidence": list(row["evidence"] or []), "model_action": row["model_action"],
        "decided_at": row["decided_at"],
    }
    if row.get("moderator_id") is not None:
        out["moderator_id"] = str(row["moderator_id"])
    if row.get("note"):
        out["note"] = row["note"]
    return out
