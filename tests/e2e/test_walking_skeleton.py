"""One tweet end to end: Kafka ingest -> faust agents -> Cassandra + Redis -> HTTP home timeline."""

import secrets

import orjson
from confluent_kafka import Consumer, TopicPartition

from adapters.redis_store import timeline_key
from api.auth import mint_token
from pipeline.events import encode
from pipeline.model import Tweet
from pipeline.routing import partition_key
from tests.e2e.helpers import event, eventually, in_list, new_id, user


def _auth(settings, uid):
    return {"Authorization": f"Bearer {mint_token(settings, uid)}"}


async def _home(http, settings, uid, **params):
    async with http.get("/v1/timelines/home", params=params, headers=_auth(settings, uid)) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_follow_then_tweet_is_pushed_and_served(running, producer, http, cass, redis_client):
    reader, author, stranger = new_id(), new_id(), new_id()
    for uid in (reader, author, stranger):
        await producer.send_event(user(uid, f"u{secrets.token_hex(4)}"))
    await producer.send_event(event("follow.created", reader, {"followee_id": str(author)}))
    await eventually(lambda: cass.following(reader), lambda f: author in f, what="follow stored")

    first = await _home(http, running, reader)  # builds the (empty) cached timeline
    assert first["data"] == []
    assert await redis_client.exists(timeline_key(reader))

    tweet_id = new_id()
    await producer.send_event(event("tweet.created", author, {"tweet_id": str(tweet_id), "text": "hello, e2e"}))
    await producer.send_event(event("tweet.created", stranger, {"tweet_id": str(new_id()), "text": "not followed"}))
    body = await eventually(lambda: _home(http, running, reader), lambda b: b["data"], what="tweet visible")

    [item] = body["data"]
    assert item["id_str"] == str(tweet_id) and item["id"] == tweet_id
    assert item["text"] == "hello, e2e" and item["author"]["id_str"] == str(author)
    # It was pushed into the cached timeline by the fan-out agent (the timeline existed, so no rebuild).
    assert await in_list(redis_client, timeline_key(reader), tweet_id)
    assert tweet_id in await cass.recent_tweet_ids(author, 5)


async def test_timeline_survives_losing_redis(running, producer, http, cass, redis_client):
    reader, author = new_id(), new_id()
    for uid in (reader, author):
        await producer.send_event(user(uid, f"u{secrets.token_hex(4)}"))
    await producer.send_event(event("follow.created", reader, {"followee_id": str(author)}))
    tweet_ids = [new_id() for _ in range(3)]
    for t in tweet_ids:
        await producer.send_event(event("tweet.created", author, {"tweet_id": str(t), "text": f"t{t}"}))
    await eventually(lambda: cass.recent_tweet_ids(author, 10), lambda ids: len(ids) == 3, what="tweets stored")
    await eventually(lambda: cass.following(reader), lambda f: author in f, what="follow stored")

    await redis_client.flushdb()
    body = await _home(http, running, reader)
    assert [int(t["id_str"]) for t in body["data"]] == sorted(tweet_ids, reverse=True)
    page = await _home(http, running, reader, limit="2")
    assert len(page["data"]) == 2
    rest = await _home(http, running, reader, max_id=page["meta"]["next_max_id"])
    assert [t["id_str"] for t in page["data"] + rest["data"]] == [str(t) for t in sorted(tweet_ids, reverse=True)]


async def test_malformed_event_is_dead_lettered_and_the_pipeline_goes_on(running, producer, cass):
    author = new_id()
    await producer.send_event(user(author, f"u{secrets.token_hex(4)}"))
    bad_key = str(author).encode()
    partition, offset = await producer.send(running.topic("ingest.tweets"), bad_key, b"{this is not json")
    good = new_id()
    await producer.send_event(event("tweet.created", author, {"tweet_id": str(good), "text": "after the bad one"}))
    await eventually(lambda: cass.recent_tweet_ids(author, 5), lambda ids: good in ids, what="good tweet stored")

    consumer = Consumer({"bootstrap.servers": running.kafka_bootstrap, "group.id": f"dlq-{secrets.token_hex(4)}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    dl_topic = running.topic("deadletter")
    md = consumer.list_topics(dl_topic, timeout=10)
    consumer.assign([TopicPartition(dl_topic, p, 0) for p in md.topics[dl_topic].partitions])
    try:
        async def find():
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                return None
            headers = {k: v.decode() for k, v in (msg.headers() or [])}
            if headers.get("source_offset") == str(offset) and headers.get("source_partition") == str(partition):
                return msg, headers
            return None
        msg, headers = await eventually(find, lambda r: r is not None, what="dead-letter record")
    finally:
        consumer.close()
    assert headers["reason"] == "malformed_json"
    assert headers["source_topic"] == running.topic("ingest.tweets")
    assert msg.value() == b"{this is not json" and msg.key() == bad_key


async def test_home_timeline_needs_a_valid_token(running, http):
    async with http.get("/v1/timelines/home") as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "unauthorized"
    async with http.get("/v1/timelines/home", headers={"Authorization": "Bearer x.y.z"}) as resp:
        assert resp.status == 401


async def test_bad_parameters_are_400_naming_the_field(running, http):
    headers = _auth(running, new_id())
    for params, field in (({"limit": "1000"}, "limit"), ({"max_id": "abc"}, "max_id"), ({"since_id": "-1"}, "since_id")):
        async with http.get("/v1/timelines/home", params=params, headers=headers) as resp:
            body = orjson.loads(await resp.read())
            assert resp.status == 400 and body["error"]["field"] == field


async def test_a_forwarded_record_of_an_earlier_release_is_still_delivered(running, producer, http, cass, redis_client):
    """The moderation agent packs what it lets through (tweets.forwarded); a record of one event,
    keyed by its author, as an earlier release produced them, may still be on tweets.moderated
    after an upgrade, and the fanout agent delivers it like the packed ones."""
    reader, author = new_id(), new_id()
    for uid in (reader, author):
        await producer.send_event(user(uid, f"u{secrets.token_hex(4)}"))
    await producer.send_event(event("follow.created", reader, {"followee_id": str(author)}))
    await eventually(lambda: cass.following(reader), lambda f: author in f, what="follow stored")
    await _home(http, running, reader)  # built
    old, new = new_id(), new_id()
    # As moderation stores a tweet before forwarding it (readers hydrate it from there).
    single = event("tweet.created", author, {"tweet_id": str(old), "text": "forwarded alone"})
    await cass.save_tweets([Tweet.from_event(single)])
    await producer.send(running.topic("tweets.moderated"), partition_key(single), encode(single))
    await producer.send_event(event("tweet.created", author, {"tweet_id": str(new), "text": "through moderation"}))
    body = await eventually(lambda: _home(http, running, reader), lambda b: len(b["data"]) == 2, what="both tweets")
    assert [t["id"] for t in body["data"]] == [new, old]
