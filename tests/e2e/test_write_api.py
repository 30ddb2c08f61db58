"""The HTTP write path: 202 with ids after the broker's ack, and every refusal as JSON naming the field."""

import asyncio
import secrets

import aiohttp
import orjson
import pytest
import pytest_asyncio
import yaml

from api.auth import mint_token
from pipeline.settings import Settings
from pipeline.topology import with_overrides
from stack import launcher
from starling import local
from tests.conftest import free_port
from tests.e2e.helpers import eventually, new_id, read_topic


def auth(settings, uid):
    return {"Authorization": f"Bearer {mint_token(settings, uid)}"}


async def call(http, settings, method, path, uid=None, json=None, headers=None, data=None):
    h = dict(headers or {})
    if uid is not None:
        h.update(auth(settings, uid))
    async with http.request(method, path, json=json, data=data, headers=h) as resp:
        body = await resp.read()
        return resp.status, (orjson.loads(body) if body else None), resp.headers


def from_own_ip(port):
    """A client session from its own loopback address (all of 127.0.0.0/8 is local), so per-IP
    counters of one test are not shared with others."""
    ip = f"127.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"
    return aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}",
                                 connector=aiohttp.TCPConnector(local_addr=(ip, 0)))


async def register(http, settings, cass, uid=None):
    uid = uid or new_id()
    status, body, _ = await call(http, settings, "POST", "/v1/users", uid,
                                 {"handle": f"h{secrets.token_hex(5)}", "display_name": "Tester"})
    assert status == 202, body
    assert body["user_id_str"] == str(uid) and body["status"] == "accepted"
    await eventually(lambda: cass.existing_users([uid]), lambda found: uid in found, what="user stored")
    return uid


@pytest_asyncio.fixture(scope="module")
async def pair(running, http, cass):
    """Two registered users; the first follows the second."""
    a, b = await register(http, running, cass), await register(http, running, cass)
    status, _, _ = await call(http, running, "POST", f"/v1/users/{b}/follow", a)
    assert status == 202
    await eventually(lambda: cass.following(a), lambda f: b in f, what="follow stored")
    return a, b


async def test_post_tweet_is_accepted_with_ids_and_reaches_the_follower(running, http, cass, pair):
    reader, author = pair
    status, body, _ = await call(http, running, "POST", "/v1/tweets", author, {"text": "via HTTP #starling"})
    assert status == 202
    tweet_id = body["tweet_id"]
    assert body["tweet_id_str"] == str(tweet_id) and body["event_id_str"] == str(body["event_id"])

    async def home():
        return (await call(http, running, "GET", "/v1/timelines/home", reader))[1]

    page = await eventually(home, lambda b: any(t["id"] == tweet_id for t in b["data"]), what="tweet in home")
    assert page["data"][0]["text"] == "via HTTP #starling"


async def test_reply_quote_like_retweet_delete(running, http, cass, pair):
    reader, author = pair
    _, original, _ = await call(http, running, "POST", "/v1/tweets", author, {"text": "original"})
    tid = original["tweet_id"]
    await eventually(lambda: cass.tweet_states([tid]), lambda s: tid in s, what="tweet stored")
    status, reply, _ = await call(http, running, "POST", "/v1/tweets", reader, {"text": "a reply", "reply_to": str(tid)})
    assert status == 202
    status, _, _ = await call(http, running, "POST", "/v1/tweets", reader, {
        "text": "a quote", "quote_of": str(tid),
        "media": [{"url": "https://img.example/cat.png", "type": "image", "alt_text": "a cat"}]})
    assert status == 202
    status, _, _ = await call(http, running, "POST", f"/v1/tweets/{tid}/like", reader)
    assert status == 202
    status, rt, _ = await call(http, running, "POST", f"/v1/tweets/{tid}/retweet", reader)
    assert status == 202 and rt["retweet_id"] != tid
    await eventually(lambda: cass.liked_by(tid), lambda users: reader in users, what="like stored")
    stored = await eventually(lambda: cass.get_tweets([reply["tweet_id"]]), lambda t: t, what="reply stored")
    assert stored[reply["tweet_id"]].reply_to == tid

    status, body, _ = await call(http, running, "DELETE", f"/v1/tweets/{tid}", reader)
    assert status == 403 and body["error"]["code"] == "not_owner"
    status, _, _ = await call(http, running, "DELETE", f"/v1/tweets/{tid}", author)
    assert status == 202
    await eventually(lambda: cass.get_tweets([tid]), lambda t: not t, what="tweet deleted")
    status, body, _ = await call(http, running, "POST", f"/v1/tweets/{tid}/like", reader)
    assert status == 404 and body["error"]["field"] == "tweet_id"


@pytest.mark.parametrize("body, field", [
    ({}, "text"),
    ({"text": 5}, "text"),
    ({"text": "x", "author_id": "1"}, "author_id"),          # the actor comes from the token
    ({"text": "x", "like_count": 9}, "like_count"),           # read-only fields are refused
    ({"text": "あ" * 141}, "text"),                           # 282 by the weighted count
    ({"text": "x", "reply_to": "abc"}, "reply_to"),
    ({"text": "x", "reply_to": "123"}, "reply_to"),            # no such tweet: 404
    ({"text": "x", "media": [{"url": "http://insecure", "type": "image"}]}, "media.0.url"),
])
async def test_bad_tweets_name_the_field(running, http, pair, body, field):
    status, out, _ = await call(http, running, "POST", "/v1/tweets", pair[1], body)
    assert status in (400, 404), out
    assert out["error"]["field"] == field


async def test_auth_size_and_media_type_errors(running, http, pair):
    status, body, headers = await call(http, running, "POST", "/v1/tweets", None, {"text": "x"})
    assert status == 401 and body["error"]["code"] == "unauthorized" and "Bearer" in headers["WWW-Authenticate"]
    status, _, _ = await call(http, running, "POST", "/v1/tweets", None, {"text": "x"},
                              headers={"Authorization": "Bearer " + mint_token(running, 1)[:-3] + "abc"})
    assert status == 401
    status, body, _ = await call(http, running, "POST", "/v1/tweets", pair[1],
                                 data=b'{"text": "' + b"x" * 70_000 + b'"}', headers={"Content-Type": "application/json"})
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    status, body, _ = await call(http, running, "POST", "/v1/tweets", pair[1], data=b"text=x",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415 and body["error"]["field"] == "Content-Type"
    status, body, _ = await call(http, running, "POST", "/v1/tweets", pair[1], data=b"{nope",
                                 headers={"Content-Type": "application/json"})
    assert status == 400 and body["error"]["field"] == "(body)"


async def test_unregistered_and_self_targeted_writes_are_refused(running, http, pair):
    stranger = new_id()
    status, body, _ = await call(http, running, "POST", "/v1/tweets", stranger, {"text": "who am I"})
    assert status == 403 and body["error"]["code"] == "not_registered"
    status, body, _ = await call(http, running, "POST", f"/v1/users/{pair[0]}/follow", pair[0])
    assert status == 400 and body["error"]["field"] == "user_id"
    status, body, _ = await call(http, running, "POST", f"/v1/users/{new_id()}/block", pair[0])
    assert status == 404 and body["error"]["field"] == "user_id"


async def test_idempotency_key_returns_the_first_answer_without_a_second_event(running, http, pair):
    author = pair[1]
    key = {"Idempotency-Key": f"k-{secrets.token_hex(8)}"}
    first = await call(http, running, "POST", "/v1/tweets", author, {"text": "exactly once"}, headers=key)
    again = await call(http, running, "POST", "/v1/tweets", author, {"text": "exactly once"}, headers=key)
    assert first[0] == again[0] == 202
    assert first[1] == again[1] and again[2].get("Idempotent-Replayed") == "true"
    other = await call(http, running, "POST", "/v1/tweets", author, {"text": "something else"}, headers=key)
    assert other[0] == 422 and other[1]["error"]["field"] == "Idempotency-Key"
    tweet_id = first[1]["tweet_id_str"]
    records = read_topic(running.kafka_bootstrap, running.topic("ingest.tweets"))
    events = [orjson.loads(m.value()) for m in records if m.key() == str(author).encode()]
    assert sum(1 for e in events if e["data"].get("tweet_id") == tweet_id) == 1


# -- API processes with other settings: tight rate limits, an unreachable broker --------------

@pytest.fixture(scope="module")
def api_with(running, test_env, tmp_path_factory):
    started = []

    def start(topology_patch=None, **env_overrides):
        topo = with_overrides(yaml.safe_load(running.topology_path.read_text()), topology_patch or {})
        tmp = tmp_path_factory.mktemp("api")
        (tmp / "topology.yaml").write_text(yaml.safe_dump(topo))
        env = {**test_env, "STARLING_TOPOLOGY": str(tmp / "topology.yaml"), "STARLING_STATE_DIR": str(tmp),
               "STARLING_API_PORT": str(free_port()), **env_overrides}
        settings = Settings.from_env(env)
        [api] = [s for s in local.apps(settings, env) if s.name == "api"]
        launcher.up([api])
        started.append(api)
        return settings

    yield start
    launcher.down(started)


async def test_rate_limit_is_exact_under_concurrency(running, api_with, cass):
    settings = api_with({"api.rate_limits.timeline_reads": {"per_user": 10, "per_ip": 1000}})
    uid = new_id()
    async with from_own_ip(settings.api_port) as http:
        results = await asyncio.gather(*(call(http, settings, "GET", "/v1/timelines/home", uid) for _ in range(40)))
    statuses = sorted(r[0] for r in results)
    assert statuses.count(200) == 10 and statuses.count(429) == 30
    limited = next(r for r in results if r[0] == 429)
    assert limited[1]["error"]["code"] == "rate_limited"
    assert int(limited[2]["Retry-After"]) >= 1 and limited[2]["X-RateLimit-Limit"] == "10"
    assert limited[2]["X-RateLimit-Remaining"] == "0" and int(limited[2]["X-RateLimit-Reset"]) > 0
    ok = next(r for r in results if r[0] == 200)
    assert int(ok[2]["X-RateLimit-Remaining"]) < 10


async def test_per_ip_limit_applies_across_users(running, api_with):
    settings = api_with({"api.rate_limits.timeline_reads": {"per_user": 100, "per_ip": 5}})
    async with from_own_ip(settings.api_port) as http:
        results = [await call(http, settings, "GET", "/v1/timelines/home", new_id()) for _ in range(8)]
    assert [r[0] for r in results] == [200] * 5 + [429] * 3


async def test_broker_down_is_503_with_retry_after_and_a_retry_lands_once(running, api_with, http, pair):
    author = pair[1]
    dead = api_with({"api.produce_timeout_ms": 1500}, STARLING_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}")
    key = {"Idempotency-Key": f"k-{secrets.token_hex(8)}"}
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{dead.api_port}") as dead_http:
        status, body, headers = await call(dead_http, dead, "POST", "/v1/tweets", author, {"text": "in the outage"}, headers=key)
    assert status == 503 and body["error"]["code"] == "broker_unavailable" and int(headers["Retry-After"]) > 0
    # The client retries with the same key against a healthy API: accepted once.
    status, body, _ = await call(http, running, "POST", "/v1/tweets", author, {"text": "in the outage"}, headers=key)
    assert status == 202
    records = read_topic(running.kafka_bootstrap, running.topic("ingest.tweets"))
    texts = [orjson.loads(m.value())["data"].get("text") for m in records if m.key() == str(author).encode()]
    assert texts.count("in the outage") == 1


async def test_openapi_is_served_and_every_protected_operation_needs_a_token(running, http):
    from api import contract

    status, doc, _ = await call(http, running, "GET", "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1") and "/v1/tweets" in doc["paths"]
    for op in contract.load()[1]:
        path = op.path.replace("{tweet_id}", "123").replace("{user_id}", "456")
        status, body, _ = await call(http, running, op.method, path)
        if op.authenticated:
            assert status == 401 and body["error"]["code"] == "unauthorized", op.operation_id
        else:
            assert status == 200, op.operation_id
