"""Write endpoints: validate, assign ids, produce to Kafka, answer 202 once the broker acknowledged.

Every write is one event, so a write is either accepted whole or not at all: a broker that does
not acknowledge within the produce timeout gets the client a 503 with Retry-After, and a retry
with the same Idempotency-Key re-sends the same ids (so even a timed-out send that did reach
Kafka cannot become two tweets downstream).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from confluent_kafka import KafkaException

from adapters.cassandra_store import CassandraStore
from adapters.idempotency import IdempotencyStore, fingerprint
from adapters.kafka import EventProducer
from api.contract import Operation, check_body
from api.errors import ApiError, bad_request, json_response
from api.keys import CASSANDRA, OPERATION, USER_ID, WRITER
from pipeline.entities import MAX_TWEET_LENGTH, tweet_length
from pipeline.events import Event
from pipeline.snowflake import Snowflake

IDEMPOTENCY_KEY_MAX = 255
RETRY_AFTER_S = "5"

# Builds the event and the response from the ids reserved for this request.
Build = Callable[[list[int], int], tuple[Event, dict[str, Any]]]


def id_pair(name: str, value: int) -> dict[str, Any]:
    """An id as a number and as a string: JavaScript loses precision above 2^53."""
    return {name: value, f"{name}_str": str(value)}


class Writer:
    def __init__(self, producer: EventProducer, idempotency: IdempotencyStore, snowflake: Snowflake,
                 produce_timeout_s: float) -> None:
        self.producer = producer
        self.idempotency = idempotency
        self.snowflake = snowflake
        self.produce_timeout_s = produce_timeout_s

    async def accept(self, request: web.Request, user_id: int, n_ids: int, build: Build, body: bytes) -> web.Response:
        now_ms = int(time.time() * 1000)
        ids = [self.snowflake.next_id(now_ms) for _ in range(n_ids)]
        idem_key = request.headers.get("Idempotency-Key")
        store_key = None
        if idem_key is not None:
            if not 0 < len(idem_key) <= IDEMPOTENCY_KEY_MAX or not idem_key.isprintable() or not idem_key.isascii():
                raise bad_request("Idempotency-Key", f"must be 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters")
            store_key = IdempotencyStore.key(user_id, idem_key)
            begun = await self.idempotency.begin(store_key, fingerprint(request.method, request.path, body), ids, now_ms)
            if begun.outcome == "done":
                return json_response(begun.response, status=202, headers={"Idempotent-Replayed": "true"})
            if begun.outcome == "busy":
                raise ApiError(409, "request_in_progress", "a request with this Idempotency-Key is in progress",
                               field="Idempotency-Key", headers={"Retry-After": "1"})
            if begun.outcome == "mismatch":
                raise ApiError(422, "idempotency_key_reused",
                               "this Idempotency-Key was used for a different request", field="Idempotency-Key")
            ids = begun.ids
        event, response = build(ids, now_ms)
        try:
            await self.producer.send_event(event, timeout_s=self.produce_timeout_s)
        except (KafkaException, BufferError, TimeoutError) as exc:
            if store_key is not None:
                await self.idempotency.release(store_key)
            raise ApiError(503, "broker_unavailable", f"the event was not accepted by Kafka: {exc}",
                           headers={"Retry-After": RETRY_AFTER_S}) from None
        response = {"status": "accepted", **id_pair("event_id", event.event_id), **response}
        if store_key is not None:
            await self.idempotency.finish(store_key, response)
        return json_response(response, status=202)


async def read_body(request: web.Request, op: Operation) -> tuple[dict[str, Any], bytes]:
    """The JSON body, validated against the operation's schema (400/413/415 otherwise)."""
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json", field="Content-Type")
    raw = await request.read()  # aiohttp answers 413 beyond client_max_size
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request("(body)", f"not valid JSON: {exc}") from None
    assert op.body is not None
    check_body(op.body, body)
    return body, raw


def check_text(text: str) -> None:
    length = tweet_length(text)
    if length > MAX_TWEET_LENGTH:
        raise bad_request("text", f"text is {length} characters long as counted for tweets; "
                                  f"at most {MAX_TWEET_LENGTH} (docs/TEXT.md)")


def path_id(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 19 or raw.startswith("0") or int(raw) >= 1 << 63:
        raise bad_request(name, f"{name} must be a decimal 64-bit id")
    return int(raw)


async def require_tweet(cass: CassandraStore, tweet_id: int, field: str) -> int:
    """The author of a live tweet, or 404 naming the field."""
    state = (await cass.tweet_states([tweet_id])).get(tweet_id)
    if state is None or state.deleted:
        raise ApiError(404, "not_found", f"tweet {tweet_id} does not exist", field=field)
    return state.author_id


async def require_user(cass: CassandraStore, user_id: int, field: str) -> None:
    if not await cass.existing_users([user_id]):
        raise ApiError(404, "not_found", f"user {user_id} does not exist", field=field)


def event(event_id: int, etype: str, actor: int, now_ms: int, data: dict[str, Any]) -> Event:
    return Event(event_id=event_id, type=etype, version=1, occurred_at=now_ms, actor=actor, data=data)


# -- handlers, by OpenAPI operationId -----------------------------------------------------------

def _ctx(request: web.Request) -> tuple[Writer, CassandraStore, int]:
    writer = request.app[WRITER]
    assert isinstance(writer, Writer)
    return writer, request.app[CASSANDRA], request[USER_ID]


# Registered users are never removed, so a positive answer can be remembered per process.
_REGISTERED: OrderedDict[int, None] = OrderedDict()
REGISTERED_CACHE = 100_000


async def _require_registered(cass: CassandraStore, me: int) -> None:
    if me in _REGISTERED:
        _REGISTERED.move_to_end(me)
        return
    if not await cass.existing_users([me]):
        raise ApiError(403, "not_registered", "register a profile first (POST /v1/users)")
    _REGISTERED[me] = None
    if len(_REGISTERED) > REGISTERED_CACHE:
        _REGISTERED.popitem(last=False)


async def register_user(request: web.Request) -> web.Response:
    writer, cass, me = _ctx(request)
    body, raw = await read_body(request, request[OPERATION])
    owner = await cass.user_id_for_handle(body["handle"])
    if owner is not None and owner != me:
        raise ApiError(409, "handle_taken", f"@{body['handle']} is taken", field="handle")
    if owner is None and await cass.existing_users([me]):
        raise ApiError(409, "already_registered", "this account is registered; handles cannot change",
                       field="handle")
    return await writer.accept(request, me, 1, lambda ids, now: (
        event(ids[0], "user.registered", me, now, body), id_pair("user_id", me)), raw)


async def update_profile(request: web.Request) -> web.Response:
    writer, cass, me = _ctx(request)
    body, raw = await read_body(request, request[OPERATION])
    await _require_registered(cass, me)
    return await writer.accept(request, me, 1, lambda ids, now: (
        event(ids[0], "user.updated", me, now, body), id_pair("user_id", me)), raw)


async def post_tweet(request: web.Request) -> web.Response:
    writer, cass, me = _ctx(request)
    body, raw = await read_body(request, request[OPERATION])
    check_text(body["text"])
    await _require_registered(cass, me)
    for field in ("reply_to", "quote_of"):
        if field in body:
            await require_tweet(cass, int(body[field]), field)

    def build(ids: list[int], now: int) -> tuple[Event, dict[str, Any]]:
        return event(ids[0], "tweet.created", me, now, {"tweet_id": str(ids[1]), **body}), id_pair("tweet_id", ids[1])

    return await writer.accept(request, me, 2, build, raw)


async def delete_tweet(request: web.Request) -> web.Response:
    writer, cass, me = _ctx(request)
    tweet_id = path_id(request, "tweet_id")
    if await require_tweet(cass, tweet_id, "tweet_id") != me:
        raise ApiError(403, "not_owner", "only the author can delete a tweet", field="tweet_id")
    return await writer.accept(request, me, 1, lambda ids, now: (
        event(ids[0], "tweet.deleted", me, now, {"tweet_id": str(tweet_id)}), id_pair("tweet_id", tweet_id)), b"")


def _tweet_action(etype: str, needs_live_tweet: bool, new_id: str | None = None) -> Callable[[web.Request], Any]:
    async def handler(request: web.Request) -> web.Response:
        writer, cass, me = _ctx(request)
        tweet_id = path_id(request, "tweet_id")
        await _require_registered(cass, me)
        if needs_live_tweet:
            await require_tweet(cass, tweet_id, "tweet_id")

        def build(ids: list[int], now: int) -> tuple[Event, dict[str, Any]]:
            data = {"tweet_id": str(tweet_id)}
            response = id_pair("tweet_id", tweet_id)
            if new_id:
                data[new_id] = str(ids[1])
                response.update(id_pair(new_id, ids[1]))
            return event(ids[0], etype, me, now, data), response

        return await writer.accept(request, me, 2 if new_id else 1, build, b"")

    return handler


def _user_action(etype: str, field: str, needs_target: bool) -> Callable[[web.Request], Any]:
    async def handler(request: web.Request) -> web.Response:
        writer, cass, me = _ctx(request)
        target = path_id(request, "user_id")
        if target == me:
            raise bad_request("user_id", "an account cannot do this to itself")
        await _require_registered(cass, me)
        if needs_target:
            await require_user(cass, target, "user_id")
        return await writer.accept(request, me, 1, lambda ids, now: (
            event(ids[0], etype, me, now, {field: str(target)}), id_pair("user_id", target)), b"")

    return handler


like_tweet = _tweet_action("like.created", needs_live_tweet=True)
unlike_tweet = _tweet_action("like.removed", needs_live_tweet=False)
retweet = _tweet_action("retweet.created", needs_live_tweet=True, new_id="retweet_id")
undo_retweet = _tweet_action("retweet.removed", needs_live_tweet=False)
follow = _user_action("follow.created", "followee_id", needs_target=True)
unfollow = _user_action("follow.removed", "followee_id", needs_target=False)
block = _user_action("block.created", "blocked_id", needs_target=True)
unblock = _user_action("block.removed", "blocked_id", needs_target=False)
mute = _user_action("mute.created", "muted_id", needs_target=True)
unmute = _user_action("mute.removed", "muted_id", needs_target=False)
