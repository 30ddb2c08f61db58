"""Proof of exactness: a segment of the engagement topic processed by a worker that dies right
after writing a batch's counts and before its facts (a failpoint: the one window the replay guard
exists for), then by a worker killed with SIGKILL in the middle of it, then replayed whole once
more; every count is compared with the ground truth computed here from the events that were sent.

The segment has duplicates (the same event delivered twice), unlikes arriving before their likes,
retweets and undos, and most of it lands on one hot tweet.
"""

import os
import random
import secrets
import signal
import time

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from dataclasses import replace

from api.auth import mint_token
from stack import launcher, process
from stack.errors import StackError
from starling import local
from tests.e2e.helpers import event, eventually, new_id

N_EVENTS = 3000
USERS = 40


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "exactness-probe"})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    finally:
        c.close()


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result()
    return {tp.partition: tp.offset for tp in res.topic_partitions if tp.topic == topic}


def rewind(bootstrap: str, group: str, topic: str, to: dict[int, int]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, o) for p, o in to.items()])
    admin.alter_consumer_group_offsets([req])[group].result()


def truth(events) -> dict[int, dict[str, int]]:
    """Last write wins per (tweet, kind, user) by event time; at equal times a like beats an unlike
    (Cassandra's tie rule); the count is the cells left liked / retweeted."""
    cells = {}
    for e in events:
        kind = e.type.split(".")[0]
        key = (int(e.data["tweet_id"]), kind, e.actor)
        new = (e.occurred_at, e.type.endswith(".created"))
        if key not in cells or new > cells[key]:
            cells[key] = new
    out: dict[int, dict[str, int]] = {}
    for (tweet, kind, _user), (_t, present) in cells.items():
        out.setdefault(tweet, {"like": 0, "retweet": 0})[kind] += int(present)
    return out


async def test_counts_are_exact_after_a_kill_mid_batch_and_a_full_replay(running, test_env, producer, cass, http):
    bootstrap, group = running.kafka_bootstrap, running.app_id
    topic = running.topic("ingest.engagements")
    worker = next(s for s in local.apps(running, test_env) if s.name == "worker")

    users = [new_id() for _ in range(USERS)]
    for i, uid in enumerate(users):
        await producer.send_event(event("user.registered", uid, {"handle": f"x{secrets.token_hex(6)}", "display_name": f"X{i}"}))
    await eventually(lambda: cass.existing_users(users), lambda f: len(f) == USERS, what="users")
    tweets = [new_id() for _ in range(3)]
    for tid in tweets:
        await producer.send_event(event("tweet.created", users[0], {"tweet_id": str(tid), "text": "engage"}))
    await eventually(lambda: cass.get_tweets(tweets), lambda t: len(t) == 3, what="tweets")

    try:
        launcher.down([worker])  # the segment waits in Kafka while no worker runs
        start = end_offsets(bootstrap, topic)
        rng = random.Random(5)
        base = int(time.time() * 1000)
        sent = []
        for i in range(N_EVENTS):
            if sent and rng.random() < 0.1:
                sent.append(rng.choice(sent))  # the same event again
                continue
            tid = tweets[0] if rng.random() < 0.8 else rng.choice(tweets[1:])
            user = rng.choice(users)
            at = base + i + rng.randint(-50, 50)  # arrival order is not event-time order
            kind = rng.choice(["like.created", "like.created", "like.removed", "retweet.created", "retweet.removed"])
            data = {"tweet_id": str(tid)}
            if kind == "retweet.created":
                data["retweet_id"] = str(new_id())
            sent.append(event(kind, user, data, occurred_at=at))
        for ev in sent:
            await producer.send_event(ev)
        end = end_offsets(bootstrap, topic)

        # 1. A worker that dies between the counts and the facts of its first batch.
        crashing = replace(worker, env={**(worker.env or {}), "STARLING_FAILPOINT": "engagement.after_counts"})
        try:
            launcher.up([crashing], out=open(os.devnull, "w"))
        except StackError:
            pass  # it may die before its readiness is seen
        pid = process.read_pid(crashing.pid_file)

        async def gone(pid: int) -> bool:
            process.reap(pid)
            return not process.is_running(pid, worker.marker)

        await eventually(lambda: gone(pid), bool, timeout_s=90, what="worker died at the failpoint")
        counted = await cass.engagement_counts(tweets)
        assert counted, "it wrote counts before dying"
        assert committed(bootstrap, group, topic) != end, "and committed nothing past them"

        # 2. A worker killed with SIGKILL as soon as it is processing, in the middle of a batch.
        launcher.up([worker])
        before = {t: c.offset for t, c in counted.items()}
        await eventually(lambda: cass.engagement_counts(tweets),
                         lambda c: any(c[t].offset != before.get(t) for t in c), timeout_s=60, what="processing resumed")
        pid = process.read_pid(worker.pid_file)
        os.kill(pid, signal.SIGKILL)
        # A signal is sent, not waited for: until the process is gone, launcher.up below takes it
        # for the running worker and starts none (a CI run on a slow host failed so).
        await eventually(lambda: gone(pid), bool, timeout_s=30, what="the killed worker gone")
        assert committed(bootstrap, group, topic) != end, "killed before the segment was done"

        async def drained():
            return committed(bootstrap, group, topic)

        launcher.up([worker])  # 3. restarts from the last commit: part of the segment comes again
        await eventually(drained, lambda c: all(c.get(p, 0) >= o for p, o in end.items()), timeout_s=120,
                         what="segment processed after the restart")

        # 4. And the whole segment once more.
        launcher.down([worker])
        rewind(bootstrap, group, topic, {p: start[p] for p in end})
        launcher.up([worker])
        await eventually(drained, lambda c: all(c.get(p, 0) >= o for p, o in end.items()), timeout_s=120,
                         what="segment replayed")

    finally:
        launcher.up([worker], out=open(os.devnull, "w"))  # the shared worker runs on for other tests

    expected = truth(sent)
    stored = await cass.engagement_counts(tweets)
    for tid in tweets:
        assert stored[tid].get("likes") == expected[tid]["like"], ("likes", tid)
        assert stored[tid].get("retweets") == expected[tid]["retweet"], ("retweets", tid)
    assert expected[tweets[0]]["like"] > 10, "the hot tweet's count is not trivially small"

    async def shown(tid):
        headers = {"Authorization": f"Bearer {mint_token(running, users[1])}"}
        async with http.get(f"/v1/tweets/{tid}", headers=headers) as r:
            return (await r.json())["data"]["public_metrics"]

    for tid in tweets:
        await eventually(lambda tid=tid: shown(tid),
                         lambda m, tid=tid: (m["like_count"], m["retweet_count"]) == (expected[tid]["like"],
                                                                                      expected[tid]["retweet"]),
                         what=f"the API shows tweet {tid}'s exact counts")
