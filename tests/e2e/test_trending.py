"""Trending through the running pipeline: a burst by many accounts trends in the API and on the
`trends` topic within seconds; the same tag pushed by three accounts does not; deleted tweets stop
counting, and so do tweets a moderator blocks. (Test topology: 1 s buckets, a 30 s window, published every second; tests/conftest.py.)"""

import secrets

import orjson

from api.auth import mint_token
from tests.e2e.helpers import event, eventually, new_id, read_topic

BURST_AUTHORS = 16
WINDOW = "30s"


async def get(http, settings, uid, path, **params):
    async with http.get(path, params=params, headers={"Authorization": f"Bearer {mint_token(settings, uid)}"}) as r:
        return r.status, await r.json()


async def test_a_burst_trends_spam_does_not_and_deletes_uncount(running, producer, http, cass):
    users = [new_id() for _ in range(BURST_AUTHORS + 4)]
    for uid in users:
        await producer.send_event(event("user.registered", uid, {"handle": f"t{secrets.token_hex(5)}",
                                                                 "display_name": "T", "region": "FR"}))
    await eventually(lambda: cass.existing_users(users), lambda f: len(f) == len(users), what="users")
    burst_authors, spammers, reader = users[:BURST_AUTHORS], users[BURST_AUTHORS:BURST_AUTHORS + 3], users[-1]
    burst, spam = f"burst{secrets.token_hex(3)}", f"spam{secrets.token_hex(3)}"
    # Every partition's tracker needs a window's worth of history before it ranks (the worker
    # started with the session; this waits only if the test runs first).
    await eventually(lambda: get(http, running, reader, "/v1/trends", window=WINDOW),
                     lambda r: r[0] == 200 and r[1]["meta"]["warming_up"] is False, timeout_s=90,
                     what="trending warmed up")

    for spammer in spammers:  # three accounts, many tweets each
        for i in range(15):
            await producer.send_event(event("tweet.created", spammer, {"tweet_id": str(new_id()),
                                                                       "text": f"buy now #{spam} {i}"}))
    burst_tweets = []
    for author in burst_authors:
        tid = new_id()
        burst_tweets.append((author, tid))
        await producer.send_event(event("tweet.created", author, {"tweet_id": str(tid),
                                                                  "text": f"did you see this? #{burst.upper()}"}))

    def tags(r):
        return [t["tag"] for t in r[1]["data"]]

    status, body = await eventually(lambda: get(http, running, reader, "/v1/trends", window=WINDOW),
                                    lambda r: burst in tags(r), timeout_s=30, what="the burst trending")
    trend = next(t for t in body["data"] if t["tag"] == burst)
    assert trend["authors"] == BURST_AUTHORS and trend["count"] == BURST_AUTHORS and trend["rank"] >= 1
    assert trend["sample_tweets"] and all(f"#{burst.upper()}" in t["text"] for t in trend["sample_tweets"])
    assert spam not in tags((status, body)), "three accounts cannot make a trend"
    _, regional = await get(http, running, reader, "/v1/trends", window=WINDOW, region="FR")
    assert burst in tags((200, regional)), "counted in the authors' region too"
    status, bad = await get(http, running, reader, "/v1/trends", window="1y")
    assert status == 400 and bad["error"]["field"] == "window"

    snapshots = [orjson.loads(m.value()) for m in read_topic(running.kafka_bootstrap, running.topic("trends"))]
    assert any(s["region"] == "global" and burst in [t["tag"] for t in s["windows"].get(WINDOW, [])]
               for s in snapshots), "published on the trends topic"
    assert not any(spam in [t["tag"] for ts in s["windows"].values() for t in ts] for s in snapshots)

    author, tid = burst_tweets[0]  # a deleted tweet stops counting (checked while the burst is in the window)
    await producer.send_event(event("tweet.deleted", author, {"tweet_id": str(tid)}))

    def count(r):
        return next((t["count"] for t in r[1]["data"] if t["tag"] == burst), None)

    await eventually(lambda: get(http, running, reader, "/v1/trends", window=WINDOW),
                     lambda r: count(r) == BURST_AUTHORS - 1, timeout_s=20, what="the deleted tweet uncounted")

    # A moderator blocking a delivered tweet takes it out of the trend as well (docs/MODERATION.md).
    _author, blocked = burst_tweets[1]
    token = mint_token(running, reader, roles=("moderator",))
    async with http.post(f"/v1/moderation/tweets/{blocked}/verdict", json={"action": "block"},
                         headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 202, await r.text()
    await eventually(lambda: get(http, running, reader, "/v1/trends", window=WINDOW),
                     lambda r: count(r) == BURST_AUTHORS - 2, timeout_s=20, what="the blocked tweet uncounted")
