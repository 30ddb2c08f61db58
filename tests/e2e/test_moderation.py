"""Moderation before delivery, through the running pipeline: one verdict per tweet, blocked terms,
blocked domains and repeated text never delivered, labels shown, overrides propagating both ways
(test policy in tests/conftest.py: blocked terms forbiddenword and "buy followers", blocked domain
spam.example, sensitive term spoilers)."""

import secrets
import time

import orjson

from adapters.redis_store import timeline_key
from api.auth import mint_token
from tests.e2e.helpers import event, eventually, in_list, list_ids, new_id, read_topic

DAY_MS = 86_400_000


def auth(settings, uid, *roles):
    return {"Authorization": f"Bearer {mint_token(settings, uid, roles=roles)}"}


async def get(http, settings, uid, path, roles=()):
    async with http.get(path, headers=auth(settings, uid, *roles)) as r:
        return r.status, await r.json()


async def override(http, settings, moderator, tweet_id, action, roles=("moderator",)):
    async with http.post(f"/v1/moderation/tweets/{tweet_id}/verdict", json={"action": action, "note": "e2e"},
                         headers=auth(settings, moderator, *roles)) as r:
        return r.status, await r.json()


async def home_ids(http, settings, uid):
    status, body = await get(http, settings, uid, "/v1/timelines/home?limit=100")
    assert status == 200, body
    return {t["id"]: t for t in body["data"]}


async def register(producer, cass, n, age_ms):
    """Users whose accounts are `age_ms` old (the new-account signal looks at that)."""
    ids, handles = [new_id() for _ in range(n)], [f"m{secrets.token_hex(5)}" for _ in range(n)]
    at = int(time.time() * 1000) - age_ms
    for uid, handle in zip(ids, handles):
        await producer.send_event(event("user.registered", uid, {"handle": handle, "display_name": "M"},
                                        occurred_at=at))
    await eventually(lambda: cass.existing_users(ids), lambda f: len(f) == n, what="users")
    return ids, handles


async def post(producer, author, text, **refs):
    tid = new_id()
    await producer.send_event(event("tweet.created", author, {"tweet_id": str(tid), "text": text,
                                                              **{k: str(v) for k, v in refs.items()}}))
    return tid


async def test_verdicts_before_delivery_and_overrides_both_ways(running, producer, http, cass, redis_client):
    (author, reader, spammer, moderator), (_a, reader_handle, _s, _m) = await register(producer, cass, 4, 3 * DAY_MS)
    (newcomer,), _ = await register(producer, cass, 1, 60_000)
    for followee in (author, spammer, newcomer):
        await producer.send_event(event("follow.created", reader, {"followee_id": str(followee)}))
    await eventually(lambda: cass.following(reader), lambda f: {author, spammer, newcomer} <= set(f), what="follows")
    await home_ids(http, running, reader)  # builds the reader's cached timeline: pushes reach it

    parent = await post(producer, reader, "a question for everyone: favourite bird?")
    clean = await post(producer, author, "a lovely walk along the river this morning")
    reply = await post(producer, author, "the starling, without a doubt", reply_to=parent)
    labelled = await post(producer, author, "spoilers for the finale ahead")
    blocked = await post(producer, author, f"@{reader_handle} you should forbiddenword right now")
    phrase = await post(producer, author, "cheap: Buy   FOLLOWERS here")
    domain = await post(producer, author, "great deals at https://shop.spam.example/x")
    # Three strikes make a repeat offender: the same label now holds the tweet for review.
    labelled_again = await post(producer, author, "more spoilers for the finale ahead")
    promo = "Win a free cruise today, just click the link in my profile!"
    copies = [await post(producer, spammer, promo) for _ in range(3)]
    fresh_label = await post(producer, newcomer, "spoilers: the butler did it")
    sentinels = [await post(producer, a, f"that is all for now {a}") for a in (author, spammer, newcomer)]

    # An author's tweets are judged and delivered in order: once the last arrived, all were judged.
    tl = await eventually(lambda: home_ids(http, running, reader), lambda t: set(sentinels) <= set(t),
                          what="the sentinel tweets delivered")
    delivered = {clean, reply, labelled, copies[0], *sentinels}
    withheld = {blocked, phrase, domain, labelled_again, copies[1], copies[2], fresh_label}
    verdicts = await cass.verdicts(delivered | withheld)
    actions = {t: (verdicts[t]["action"], verdicts[t]["reasons"]) for t in verdicts}
    assert delivered <= set(tl) and not withheld & set(tl), (sorted(actions.items()), sorted(delivered - set(tl)))
    assert tl[labelled]["possibly_sensitive"] is True and tl[clean]["possibly_sensitive"] is False
    cached = await list_ids(redis_client, timeline_key(reader))
    assert delivered <= cached and not withheld & cached, "never pushed, not just filtered on read"

    want = {clean: "allow", reply: "allow", labelled: "label", blocked: "block", phrase: "block", domain: "block",
            labelled_again: "hide", copies[0]: "allow", copies[1]: "hide", copies[2]: "block", fresh_label: "hide"}
    assert {t: verdicts[t]["action"] for t in want} == want
    assert verdicts[blocked]["reasons"] == ["blocked_term"] and verdicts[domain]["reasons"] == ["blocked_domain"]
    assert verdicts[copies[2]]["reasons"] == ["duplicate_text"]
    assert verdicts[fresh_label]["reasons"] == ["sensitive_term", "new_account"]
    assert verdicts[labelled_again]["reasons"] == ["sensitive_term", "repeat_offender"]
    # The verdicts are published beside the push (agents/moderation.py), so a timeline can show a
    # tweet before its verdict's record is on the topic: read until every tweet has one.
    published_scores: dict[int, dict[str, float]] = {}

    async def published_per_tweet() -> dict[int, set[str]]:
        per_tweet: dict[int, set[str]] = {}
        for m in read_topic(running.kafka_bootstrap, running.topic("verdicts")):
            v = orjson.loads(m.value())
            if int(v["data"]["tweet_id"]) in want:
                per_tweet.setdefault(int(v["data"]["tweet_id"]), set()).add(v["event_id"])
                published_scores[int(v["data"]["tweet_id"])] = v["data"]["scores"]
        return per_tweet

    per_tweet = await eventually(published_per_tweet, lambda p: set(p) == set(want), what="a published verdict per tweet")
    assert {t: len(ids) for t, ids in per_tweet.items()} == {t: 1 for t in want}, "exactly one verdict per tweet"

    # Withheld tweets: invisible to others, shown to the author with why; no mention notification.
    assert (await get(http, running, reader, f"/v1/tweets/{blocked}"))[0] == 404
    status, body = await get(http, running, author, f"/v1/tweets/{blocked}")
    assert status == 200 and body["data"]["withheld"] == {"action": "block"}
    assert (await get(http, running, reader, f"/v1/moderation/tweets/{blocked}/verdict"))[0] == 404
    status, body = await get(http, running, moderator, f"/v1/moderation/tweets/{blocked}/verdict", ("moderator",))
    assert status == 200 and body["data"]["evidence"] == ["blocked_term:forbiddenword"]
    # Cassandra keeps only the non-zero scores (pipeline.moderation.stored_scores); the API gives
    # every one, as the verdicts topic carries them (rounded to 6 places there).
    api_scores = {k: round(v, 6) for k, v in body["data"]["scores"].items()}
    assert api_scores == published_scores[blocked] and len(api_scores) >= 9
    status, body = await get(http, running, moderator, "/v1/moderation/queue", ("moderator",))
    assert status == 200 and copies[1] in [item["tweet"]["id"] for item in body["data"]]
    assert (await get(http, running, reader, "/v1/moderation/queue"))[0] == 403

    # Only moderators override.
    status, body = await override(http, running, reader, clean, "block", roles=())
    assert status == 403 and body["error"]["field"] == "role"
    await eventually(lambda: get(http, running, reader, f"/v1/tweets/{parent}"),
                     lambda r: r[1]["data"]["public_metrics"]["reply_count"] == 1, what="the reply counted")

    # Allowed -> blocked: out of timelines (cache included) and out of the parent's reply count.
    assert (await override(http, running, moderator, reply, "block"))[0] == 202
    await eventually(lambda: get(http, running, reader, f"/v1/tweets/{parent}"),
                     lambda r: r[1]["data"]["public_metrics"]["reply_count"] == 0, what="the blocked reply uncounted")
    await eventually(lambda: in_list(redis_client, timeline_key(reader), reply), lambda s: not s,
                     what="the blocked reply withdrawn from the cached timeline")
    assert reply not in await home_ids(http, running, reader)
    assert (await get(http, running, reader, f"/v1/tweets/{reply}"))[0] == 404

    # Blocked -> allowed: delivered, and the mention it carried notifies now.
    assert (await override(http, running, moderator, blocked, "allow"))[0] == 202
    await eventually(lambda: home_ids(http, running, reader), lambda t: blocked in t, what="the restored tweet delivered")
    # Who pushed what: the moderation agent, the tweets it judged deliverable (the forwarded
    # records list them); the fanout agent, the restored one (a withdrawal forwarded earlier may
    # still be on its way there, and must not land after the push).
    pushed, forwarded = set(), set()
    for m in read_topic(running.kafka_bootstrap, running.topic("tweets.moderated")):
        doc = orjson.loads(m.value())
        if doc["type"] == "tweets.forwarded":
            pushed |= {int(t) for t in doc["data"].get("pushed", [])}
            forwarded |= {int(e["data"]["tweet_id"]) for e in doc["data"]["events"] if e["type"] == "tweet.created"}
    assert delivered <= pushed and not withheld & pushed, (sorted(delivered - pushed), sorted(withheld & pushed))
    assert blocked in forwarded and blocked not in pushed

    async def mentions():
        _s, body = await get(http, running, reader, "/v1/notifications")
        return [n for n in body["data"] if n["kind"] == "mention"]
    found = await eventually(mentions, lambda ns: ns, what="the restored tweet's mention notification")
    assert found[0]["tweet"]["id"] == blocked
    # Blocked again, then restored: the reply counts once more (the later write wins each time).
    assert (await override(http, running, moderator, reply, "allow"))[0] == 202
    await eventually(lambda: get(http, running, reader, f"/v1/tweets/{parent}"),
                     lambda r: r[1]["data"]["public_metrics"]["reply_count"] == 1, what="the restored reply counted")
    status, body = await get(http, running, moderator, f"/v1/moderation/tweets/{reply}/verdict", ("moderator",))
    assert body["data"]["action"] == "allow" and body["data"]["source"] == "moderator"
    assert body["data"]["model_action"] == "allow" and body["data"]["moderator_id"] == str(moderator)
