"""Moderation in the running pipeline: tweets per second per worker process, and the delivery
latency the moderation step adds.

    .venv/bin/python -m bench.moderation_pipeline [--authors 1000 --backlog 20000 --rate 100 --seconds 30]

Needs the local stack. In its own namespace it registers established authors (a month old) and one
reader following all of them, with a built home timeline, straight into Cassandra and Redis
(setup, not measured). Tweet texts are OLID's 14,100 tweets when ../shared/data/olid is there (read,
never copied), else synthetic sentences; each author posts one a minute in event time, so the
spam signals judge realistic histories.

1. Capacity. A backlog of --backlog tweet.created events on ingest.tweets is consumed, each from
   the start and in its own process, by (a) a faust worker whose agent does nothing
   (bench/noop_worker.py: what any faust agent costs) and (b) a Starling worker running only the
   moderation agent: judge, store the tweet and its verdict, publish the verdict, forward the
   delivered. The rate is taken from the consumer group's committed offsets, from the first commit
   to the last (worker start and model load excluded).
2. Latency. A worker with every agent; --rate tweets/s for --seconds. Per tweet: the moderation
   stage (its record on ingest.tweets to its record on tweets.moderated, broker timestamps of one
   machine) and the whole delivery (produce to the reader's cached timeline, polled every 5 ms).
   Before moderation existed, fan-out read ingest.tweets itself: the stage latency is what
   moderation adds in front of it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from typing import Any

import orjson

from adapters import provision
from adapters.cassandra_store import CassandraStore, write_ts_us
from adapters.kafka import EventProducer, read_to_end
from adapters.redis_store import TimelineCache, timeline_key
from bench.common import calibration_us, namespace, noop_service, produce_events, progress, summary_ms, time_drain, write_results
from bench.write_api import ROOMY
from pipeline import forwarding
from pipeline.events import Event
from pipeline.model import User
from pipeline.settings import project_root
from pipeline.snowflake import Snowflake
from pipeline.topology import load_topology
from stack import launcher
from starling import local

IDS = Snowflake(613)
MONTH_MS = 30 * 86_400_000
WORDS = ("the river walk coffee morning train late again game tonight great news team music new album "
         "weekend plans rain city lights book finished loved it cannot wait season finale").split()


def texts(seed: int) -> tuple[list[str], str]:
    olid = project_root().parent / "shared" / "data" / "olid"
    try:
        from bench.moderation_eval import load

        train, test = load(olid)
        return list(train.texts) + list(test.texts), "OLID (train + test texts)"
    except (OSError, SystemExit, ImportError):
        rng = random.Random(seed)
        return [" ".join(rng.choices(WORDS, k=rng.randint(5, 25))) for _ in range(5000)], "synthetic"


async def setup(settings: Any, authors: list[int], reader: int) -> None:
    cass = await CassandraStore.open(settings)
    timelines = TimelineCache.from_url(settings.redis_url, 800)
    at = int(time.time() * 1000) - MONTH_MS
    try:
        await cass.save_users([(User(u, f"m{u % 10**12}", "Bench", "", False, None, at), write_ts_us(at))
                               for u in [*authors, reader]])
        await cass.apply_follows([(reader, a, True, at) for a in authors])
        await timelines.fill(reader, [])  # built: every delivery is pushed into it
    finally:
        await timelines.close()
        await cass.close()


def tweet_event(author: int, text: str, at_ms: int) -> Event:
    return Event(IDS.next_id(), "tweet.created", 1, at_ms, author, {"tweet_id": str(IDS.next_id(at_ms)), "text": text})


def backlog_events(authors: list[int], corpus: list[str], n: int, seed: int) -> list[Event]:
    """n tweets, round-robin over authors, each author one a minute in event time, ending now."""
    rng = random.Random(seed)
    rounds = -(-n // len(authors))
    start = int(time.time() * 1000) - rounds * 60_000
    return [tweet_event(authors[i % len(authors)], rng.choice(corpus)[:280], start + (i // len(authors)) * 60_000)
            for i in range(n)]


def consume_rate(span: dict[str, float]) -> dict[str, Any]:
    """Tweets/s between the group's first and last commit on ingest.tweets (bench.common.time_drain)."""
    return {"events_timed": span["measured_records"], "seconds": round(span["measured_s"], 2),
            "tweets_per_s": round(span["measured_records"] / max(span["measured_s"], 1e-6)),
            "rss_mib_after": span["rss_mib_after"]}


def record_times(settings: Any, topic_name: str, wanted: set[str]) -> dict[str, int]:
    """Broker timestamps (ms) of the records carrying the wanted tweet ids, by tweet id (a packed
    record's for each of its tweets)."""
    out: dict[str, int] = {}
    for msg in read_to_end(settings.kafka_bootstrap, settings.topic(topic_name), timeout_s=120):
        value = orjson.loads(msg.value())
        for inner in (value["data"]["events"] if value["type"] == forwarding.PACKED else [value]):
            tid = inner["data"].get("tweet_id")
            if inner["type"] == "tweet.created" and tid in wanted:
                out[tid] = msg.timestamp()[1]
    return out


async def steady(settings: Any, authors: list[int], reader: int, corpus: list[str], rate: int, seconds: int,
                 seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    producer = EventProducer(settings, load_topology(settings.topology_path), **{"linger.ms": 1})
    timelines = TimelineCache.from_url(settings.redis_url, 800)
    sent: dict[str, float] = {}
    delivered: dict[str, float] = {}
    stop = asyncio.Event()

    async def poll() -> None:
        """Until sending stopped and nothing more arrived for 5 s (held or blocked tweets never do)."""
        key = timeline_key(reader)
        last_arrival = time.monotonic()
        while not stop.is_set() or time.monotonic() - last_arrival < 5:
            pending = [t for t in sent if t not in delivered]
            if pending:
                held = set(await timelines.redis.lrange(key, 0, -1))
                now = time.monotonic()
                for t in pending:
                    if t in held:
                        delivered[t] = last_arrival = now
            await asyncio.sleep(0.005)

    poller = asyncio.create_task(poll())
    try:
        t_start = time.monotonic()
        for i in range(rate * seconds):
            await asyncio.sleep(max(0.0, t_start + i / rate - time.monotonic()))
            e = tweet_event(rng.choice(authors), rng.choice(corpus)[:280], int(time.time() * 1000))
            sent[e.data["tweet_id"]] = time.monotonic()
            await producer.send_event(e)
        stop.set()
        await asyncio.wait_for(poller, timeout=300)
    finally:
        poller.cancel()
        producer.close()
        await timelines.close()
    ingest = record_times(settings, "ingest.tweets", set(sent))
    forwarded = record_times(settings, "tweets.moderated", set(sent))
    stage = [(forwarded[t] - ingest[t]) / 1000 for t in forwarded if t in ingest]
    e2e = [delivered[t] - sent[t] for t in delivered]
    return {"offered_per_s": rate, "seconds": seconds, "tweets": len(sent),
            "forwarded": len(forwarded), "withheld_by_moderation": len(sent) - len(forwarded),
            "delivered_to_reader": len(delivered),
            "moderation_stage": summary_ms(stage), "delivery_end_to_end": summary_ms(e2e)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--authors", type=int, default=1000)
    p.add_argument("--backlog", type=int, default=20_000)
    p.add_argument("--rate", type=int, default=100)
    p.add_argument("--seconds", type=int, default=30)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--capacity-only", action="store_true", help="skip the latency phase")
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    authors = [IDS.next_id() for _ in range(args.authors)]
    reader = IDS.next_id()
    corpus, source = texts(args.seed)
    results: dict[str, Any] = {"calibration_us": calibration_us(), "authors": args.authors, "texts": source}

    full_topology = load_topology(project_root() / "topology.yaml")
    only_moderation = {"agents": {"moderation": {"consumes": "ingest.tweets",
                                                 "writes": list(full_topology.agents["moderation"].writes)}}}
    settings, env = namespace("moderation-cap", {**ROOMY, **only_moderation})
    provision.create_topics(settings)
    provision.apply_cql_schema(settings)
    asyncio.run(setup(settings, authors, reader))
    events = backlog_events(authors, corpus, args.backlog, rng.randint(0, 10**9))
    progress(f"capacity: producing {len(events):,} tweets by {args.authors} authors ({source})")
    asyncio.run(produce_events(settings, events))
    worker = next(s for s in local.apps(settings, env) if s.name == "worker")
    noop = noop_service(settings, {**env, "NOOP_TOPIC": "ingest.tweets"}, worker)
    try:
        for name, svc, group in (("noop_agent", noop, f"{settings.app_id}-noop"),
                                 ("moderation_agent", worker, settings.app_id)):
            progress(f"{name}: consuming the backlog")
            results[name] = consume_rate(time_drain(settings, svc, "ingest.tweets", group))
            progress(f"{name}: {results[name]['tweets_per_s']:,} tweets/s")
    finally:
        launcher.down([noop, worker])
        provision.drop(settings)
    results["moderation_share_of_noop"] = round(results["moderation_agent"]["tweets_per_s"]
                                                / results["noop_agent"]["tweets_per_s"], 3)

    if args.capacity_only:
        print(f"\nno-op faust agent: {results['noop_agent']['tweets_per_s']:,} tweets/s; moderation agent: "
              f"{results['moderation_agent']['tweets_per_s']:,} tweets/s per worker process")
        write_results("moderation_pipeline_capacity", results)
        return 0
    settings, env = namespace("moderation-lat", ROOMY)
    provision.create_topics(settings)
    provision.apply_cql_schema(settings)
    asyncio.run(setup(settings, authors, reader))
    worker = next(s for s in local.apps(settings, env) if s.name == "worker")
    try:
        launcher.up([worker])
        progress(f"latency: {args.rate} tweets/s for {args.seconds}s through every agent")
        results["latency"] = asyncio.run(steady(settings, authors, reader, corpus, args.rate, args.seconds,
                                                rng.randint(0, 10**9)))
    finally:
        launcher.down([worker])
        provision.drop(settings)

    lat = results["latency"]
    print(f"\nno-op faust agent: {results['noop_agent']['tweets_per_s']:,} tweets/s; moderation agent: "
          f"{results['moderation_agent']['tweets_per_s']:,} tweets/s per worker process "
          f"({results['moderation_share_of_noop']:.0%} of the no-op rate)")
    print(f"at {args.rate} tweets/s: moderation stage p50 {lat['moderation_stage']['p50_ms']} ms, "
          f"p99 {lat['moderation_stage']['p99_ms']} ms; delivery end to end p50 "
          f"{lat['delivery_end_to_end']['p50_ms']} ms, p99 {lat['delivery_end_to_end']['p99_ms']} ms "
          f"({lat['delivered_to_reader']}/{lat['tweets']} delivered)")
    write_results("moderation_pipeline", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
