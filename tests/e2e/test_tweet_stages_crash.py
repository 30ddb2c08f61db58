"""The fan-out agent runs two batch loops (agents/runtime.run_by_partition): a worker killed with
SIGKILL while tweets and their deletions go through moderation and fan-out loses no tweet, and
every deletion still lands after its tweet (one author's records stay in order)."""

import os
import signal

from adapters.redis_store import timeline_key
from pipeline.topology import load_topology
from stack import launcher, process
from starling import local
from tests.e2e.helpers import event, eventually, list_ids, new_id
from tests.e2e.test_exact_counts import committed, end_offsets
from tests.e2e.test_hybrid_fanout import follow, home, register

AUTHORS = 12  # spread over every partition of ingest.tweets and tweets.moderated
PER_AUTHOR = 25  # under moderation's burst limit (30 in 5 minutes), which would hold the rest


async def test_a_kill_mid_stream_loses_no_tweet_and_keeps_deletions_after_their_tweets(
        running, test_env, producer, http, cass, redis_client):
    bootstrap, group = running.kafka_bootstrap, running.app_id
    worker = next(s for s in local.apps(running, test_env) if s.name == "worker")
    topology = load_topology(running.topology_path)
    assert topology.agents["fanout"].batches_in_flight == 2  # what this test is about
    authors = await register(producer, cass, AUTHORS)
    (reader,) = await register(producer, cass, 1)
    for author in authors:
        await follow(producer, reader, author)
    await eventually(lambda: cass.follower_counts(authors),
                     lambda c: len(c) == AUTHORS and all(x.followers == 1 for x in c.values()), what="follows")
    await home(http, running, reader)  # built and active: every tweet is pushed to it

    tweets: dict[int, int] = {}  # tweet -> author
    deleted: set[int] = set()
    try:
        launcher.down([worker])  # the records wait in Kafka while no worker runs
        for i in range(PER_AUTHOR):
            for author in authors:
                tid = new_id()
                tweets[tid] = author
                await producer.send_event(event("tweet.created", author, {"tweet_id": str(tid), "text": f"stage {i}"}))
                if i % 5 == 4:  # right behind its tweet, in the same partition
                    deleted.add(tid)
                    await producer.send_event(event("tweet.deleted", author, {"tweet_id": str(tid)}))
        ingest = running.topic("ingest.tweets")
        end = end_offsets(bootstrap, ingest)

        launcher.up([worker])
        await eventually(lambda: cass.tweet_states(list(tweets)), lambda s: len(s) > 0, timeout_s=90,
                         what="moderation started on the backlog")
        pid = process.read_pid(worker.pid_file)
        os.kill(pid, signal.SIGKILL)

        async def gone() -> bool:
            process.reap(pid)
            return not process.is_running(pid, worker.marker)

        # A signal is sent, not waited for: until the process is gone, launcher.up below takes it
        # for the running worker and starts none.
        await eventually(gone, bool, timeout_s=30, what="the killed worker gone")
        assert committed(bootstrap, group, ingest) != end, "killed before the backlog was done"

        launcher.up([worker])  # starts again from the last commit: part of the backlog comes twice
        await eventually(lambda: _committed(bootstrap, group, ingest),
                         lambda c: all(c.get(p, 0) >= o for p, o in end.items()), timeout_s=120,
                         what="ingest.tweets processed")
        moderated = running.topic("tweets.moderated")
        forwarded = end_offsets(bootstrap, moderated)
        await eventually(lambda: _committed(bootstrap, group, moderated),
                         lambda c: all(c.get(p, 0) >= o for p, o in forwarded.items()), timeout_s=120,
                         what="tweets.moderated processed")
    finally:
        launcher.up([worker], out=open(os.devnull, "w"))  # the shared worker runs on for other tests

    stored = await cass.tweet_refs(list(tweets))
    assert set(stored) == set(tweets), "every tweet was judged and stored"
    assert all(stored[t].delivered for t in set(tweets) - deleted), "moderation let every live tweet through"
    in_timeline = await list_ids(redis_client, timeline_key(reader)) & set(tweets)
    assert in_timeline == set(tweets) - deleted, "every live tweet reached the reader, no deleted one stayed"


async def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    return committed(bootstrap, group, topic)
