"""Every class of bad record reaches the dead-letter topic with its reason; nothing else is harmed."""

import secrets

import orjson
import pytest

from tests.e2e.helpers import event, eventually, new_id, read_topic, user

pytestmark = pytest.mark.asyncio(loop_scope="session")


def envelope(etype, actor, data, **over):
    doc = {"event_id": str(new_id()), "type": etype, "version": 1, "occurred_at": 1_795_000_000_000,
           "actor": str(actor), "data": data}
    doc.update(over)
    return orjson.dumps(doc)


async def test_each_bad_record_gets_its_reason(running, producer, cass):
    author, victim = new_id(), new_id()
    handle = f"h{secrets.token_hex(5)}"
    await producer.send_event(user(author, handle))
    await producer.send_event(user(victim, f"v{secrets.token_hex(5)}"))
    await eventually(lambda: cass.existing_users([author, victim]), lambda u: len(u) == 2, what="users")
    victims_tweet = new_id()
    await producer.send_event(event("tweet.created", victim, {"tweet_id": str(victims_tweet), "text": "mine"}))
    await eventually(lambda: cass.tweet_states([victims_tweet]), lambda s: s, what="victim's tweet")

    tweets, users, eng = (running.topic(t) for t in ("ingest.tweets", "ingest.users", "ingest.engagements"))
    key = str(author).encode()
    cases = {
        "wrong types": (tweets, envelope("tweet.created", author, {"tweet_id": "1", "text": 123}), "schema_violation"),
        "unknown type": (tweets, envelope("poll.created", author, {}), "unknown_type"),
        "unknown version": (tweets, envelope("tweet.created", author, {"tweet_id": "1", "text": "x"}, version=9),
                            "unknown_version"),
        "wrong topic": (users, envelope("tweet.created", author, {"tweet_id": "1", "text": "x"}), "wrong_topic"),
        "too long": (tweets, envelope("tweet.created", author, {"tweet_id": str(new_id()), "text": "ｗ" * 141}),
                     "text_too_long"),
        "oversize": (tweets, b'{"pad": "' + b"x" * 70_000 + b'"}', "oversize"),
        "not the owner": (tweets, envelope("tweet.deleted", author, {"tweet_id": str(victims_tweet)}), "not_owner"),
        "handle taken": (users, envelope("user.registered", new_id(), {"handle": handle.upper(), "display_name": "X"}),
                         "handle_taken"),
        "unknown tweet": (eng, envelope("like.created", author, {"tweet_id": str(new_id())}), "unknown_reference"),
        "unknown actor": (tweets, envelope("tweet.created", new_id(), {"tweet_id": str(new_id()), "text": "x"}),
                          "unknown_reference"),
    }
    sent = {}
    for name, (topic, value, reason) in cases.items():
        partition, offset = await producer.send(topic, key, value)
        sent[(topic, partition, offset)] = (name, reason)
    good = new_id()
    await producer.send_event(event("tweet.created", author, {"tweet_id": str(good), "text": "still fine"}))
    await eventually(lambda: cass.tweet_states([good]), lambda s: good in s, what="the good tweet after the bad")

    def dead_letters():
        found = {}
        for m in read_topic(running.kafka_bootstrap, running.topic("deadletter")):
            h = {k: v.decode() for k, v in m.headers() or []}
            found[(h["source_topic"], int(h["source_partition"]), int(h["source_offset"]))] = h["reason"]
        return found

    async def probe():
        return dead_letters()

    found = await eventually(probe, lambda f: all(k in f for k in sent), timeout_s=90, what="all dead letters")
    wrong = {name: (found[k], reason) for k, (name, reason) in sent.items() if found[k] != reason}
    assert not wrong, wrong
    assert (await cass.tweet_states([victims_tweet]))[victims_tweet].deleted is False
