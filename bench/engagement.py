"""Exact engagement counts and notifications under load, through the real pipeline.

    .venv/bin/python -m bench.engagement [--users 10000 --backlog 50000 --storm-rate 1667 --storm-seconds 60]

Needs the local stack. In its own namespace it loads users and tweets straight into Cassandra
(setup, not measured), starts one worker process, and measures:

- capacity: a backlog of like/unlike events on many tweets produced at once, timed until the
  worker's lag on ingest.engagements is zero: engagement events turned into exact counts (and
  their notifications: the notification agent reads the same topic in the same process) per
  second, next to the raw rate at which the same process-free consumer reads the topic;
- a like storm: --storm-rate likes per second on ONE tweet for --storm-seconds (the issue's "100k
  in a minute" is 1,667/s for 60 s) while other tweets get a steady trickle; consumer lag sampled
  every second on the storm's partition and on the others, and the time to drain after it ends;
- exactness: every count compared with the ground truth from the events sent;
- notifications written per second (rows in Cassandra over the drain time).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from typing import Any

from adapters import cql, provision
from adapters.cassandra_store import CassandraStore, write_ts_us
from adapters.kafka import EventProducer
from bench.common import Lag, namespace, progress, write_results
from bench.write_api import ROOMY
from pipeline.events import Event
from pipeline.model import Tweet, User
from pipeline.snowflake import Snowflake
from pipeline.topology import load_topology
from stack import launcher
from starling import local

IDS = Snowflake(611)


async def load(settings: Any, users: list[int], tweets: list[tuple[int, int]]) -> None:
    cass = await CassandraStore.open(settings)
    now = int(time.time() * 1000)
    try:
        await cass.save_users([(User(u, f"b{u % 10**12}", "Bench", "", False, None, now), write_ts_us(now)) for u in users])
        await cass.save_tweets([Tweet(t, a, "engage with me", None, None, now) for t, a in tweets])
    finally:
        await cass.close()


def like_event(user: int, tweet: int, liked: bool, at_ms: int) -> Event:
    return Event(IDS.next_id(), "like.created" if liked else "like.removed", 1, at_ms, user, {"tweet_id": str(tweet)})


async def produce(producer: EventProducer, events: list[Event]) -> None:
    for i in range(0, len(events), 2000):
        await asyncio.gather(*(producer.send_event(e) for e in events[i:i + 2000]))


def truth(events: list[Event]) -> dict[int, int]:
    last: dict[tuple[int, int], tuple[int, bool]] = {}
    for e in events:
        key = (int(e.data["tweet_id"]), e.actor)
        new = (e.occurred_at, e.type == "like.created")
        if key not in last or new > last[key]:
            last[key] = new
    out: dict[int, int] = {}
    for (tweet, _u), (_t, liked) in last.items():
        out[tweet] = out.get(tweet, 0) + int(liked)
    return out


async def notification_rows(cass: CassandraStore, recipients: list[int]) -> int:
    """Notification rows of the tweets' authors (setup-sized: a few dozen partitions)."""
    counts = await asyncio.gather(*(
        cql.execute(cass.session, "SELECT count(*) AS n FROM notifications WHERE user_id = %s", (r,))
        for r in recipients))
    return sum(int(c[0]["n"]) for c in counts)


async def measure(settings: Any, topology: Any, users: list[int], tweets: list[tuple[int, int]],
                  args: argparse.Namespace, results: dict[str, Any]) -> None:
    rng = random.Random(args.seed)
    producer = EventProducer(settings, topology, **{"linger.ms": 5})
    lag = Lag(settings, "ingest.engagements")
    cass = await CassandraStore.open(settings)
    sent: list[Event] = []
    authors = sorted({a for _t, a in tweets})
    try:
        # -- capacity: a backlog on many tweets ------------------------------------------------
        base = int(time.time() * 1000)
        backlog = [like_event(rng.choice(users), rng.choice(tweets)[0], rng.random() < 0.8, base + i)
                   for i in range(args.backlog)]
        progress(f"capacity: {len(backlog):,} like/unlike events on {len(tweets)} tweets, produced at once")
        notes_before = await notification_rows(cass, authors)
        t0 = time.monotonic()
        await produce(producer, backlog)
        t_produced = time.monotonic()
        t_done = await lag.zero()
        sent += backlog
        notes_after = await notification_rows(cass, authors)
        results["capacity"] = {
            "events": len(backlog), "produce_s": round(t_produced - t0, 2), "drain_s": round(t_done - t0, 2),
            "events_per_s": round(len(backlog) / (t_done - t0)),
            "notifications_written": notes_after - notes_before,
            "notifications_per_s": round((notes_after - notes_before) / (t_done - t0)),
        }

        # -- a like storm on one tweet ---------------------------------------------------------
        hot = tweets[0][0]
        first = like_event(rng.choice(users), hot, True, int(time.time() * 1000))
        hot_partition, _offset = await producer.send_event(first)  # where the storm lands
        sent.append(first)
        progress(f"storm: {args.storm_rate}/s likes on tweet {hot} (partition {hot_partition}) for "
                 f"{args.storm_seconds}s, {args.trickle_rate}/s on other tweets")
        samples: list[dict[str, Any]] = []
        storm_events: list[Event] = []
        t_start = time.monotonic()
        base = int(time.time() * 1000)
        sampler = asyncio.create_task(_sample(lag, hot_partition, samples, t_start))
        total_ticks = args.storm_seconds * 10
        for tick in range(total_ticks):
            due = t_start + tick / 10
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            batch = [like_event(rng.choice(users), hot, rng.random() < 0.85, base + tick * 100 + j)
                     for j in range(args.storm_rate // 10)]
            batch += [like_event(rng.choice(users), rng.choice(tweets[1:])[0], rng.random() < 0.8, base + tick * 100)
                      for _ in range(max(1, args.trickle_rate // 10))]
            storm_events += batch
            await asyncio.gather(*(producer.send_event(e) for e in batch))
        t_storm_end = time.monotonic()
        t_drained = await lag.zero()
        sampler.cancel()
        sent += storm_events
        hot_lag = [s["hot"] for s in samples]
        other_lag = [s["others_max"] for s in samples]
        results["storm"] = {
            "hot_tweet_events": sum(1 for e in storm_events if int(e.data["tweet_id"]) == hot),
            "other_events": sum(1 for e in storm_events if int(e.data["tweet_id"]) != hot),
            "offered_per_s": args.storm_rate + args.trickle_rate, "seconds": round(t_storm_end - t_start, 1),
            "max_lag_hot_partition": max(hot_lag, default=0),
            "max_lag_other_partitions": max(other_lag, default=0),
            "lag_at_storm_end_hot": hot_lag[-1] if hot_lag else 0,
            "drain_after_storm_s": round(t_drained - t_storm_end, 2),
            "lag_samples": samples,
        }

        # -- exactness -------------------------------------------------------------------------
        expected = truth(sent)
        stored = await cass.engagement_counts([t for t, _a in tweets])
        wrong = {t: (stored[t].get("likes") if t in stored else 0, n) for t, n in expected.items()
                 if (stored[t].get("likes") if t in stored else 0) != n}
        results["exactness"] = {"tweets_checked": len(expected), "mismatches": len(wrong),
                                "hot_tweet_likes": expected.get(hot, 0)}
    finally:
        producer.close()
        lag.close()
        await cass.close()


async def _sample(lag: Lag, hot: int, samples: list[dict[str, Any]], t0: float) -> None:
    while True:
        now = await asyncio.to_thread(lag.now)
        samples.append({"t_s": round(time.monotonic() - t0, 1), "hot": now.get(hot, 0),
                        "others_max": max((v for p, v in now.items() if p != hot), default=0)})
        await asyncio.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--tweets", type=int, default=200)
    p.add_argument("--backlog", type=int, default=50_000)
    p.add_argument("--storm-rate", type=int, default=1667, help="likes per second on the hot tweet")
    p.add_argument("--storm-seconds", type=int, default=60)
    p.add_argument("--trickle-rate", type=int, default=50, help="likes per second on the other tweets")
    p.add_argument("--seed", type=int, default=3)
    args = p.parse_args(argv)

    settings, env = namespace("engagement", ROOMY)
    topology = load_topology(settings.topology_path)
    provision.create_topics(settings)
    provision.apply_cql_schema(settings)
    users = [IDS.next_id() for _ in range(args.users)]
    rng = random.Random(args.seed)
    tweets = [(IDS.next_id(), rng.choice(users[:50])) for _ in range(args.tweets)]
    progress(f"loading {len(users):,} users and {len(tweets)} tweets into Cassandra")
    asyncio.run(load(settings, users, tweets))
    worker = [s for s in local.apps(settings, env) if s.name == "worker"]
    results: dict[str, Any] = {"setup": {"users": len(users), "tweets": len(tweets)}}
    try:
        launcher.up(worker)
        asyncio.run(measure(settings, topology, users, tweets, args, results))
    finally:
        launcher.down(worker)
        provision.drop(settings)
    report(results)
    write_results("engagement", results)
    return 0


def report(r: dict[str, Any]) -> None:
    c, s, x = r["capacity"], r["storm"], r["exactness"]
    print(f"\ncapacity: {c['events']:,} engagement events drained in {c['drain_s']}s = {c['events_per_s']:,}/s "
          f"per worker process (exact counts + notifications); notifications {c['notifications_per_s']:,}/s "
          f"({c['notifications_written']:,} rows)")
    print(f"storm: {s['hot_tweet_events']:,} likes on one tweet + {s['other_events']:,} on others in {s['seconds']}s; "
          f"max lag: storm partition {s['max_lag_hot_partition']:,}, other partitions {s['max_lag_other_partitions']:,}; "
          f"drained {s['drain_after_storm_s']}s after the storm")
    print(f"exactness: {x['tweets_checked']} tweets checked, {x['mismatches']} mismatches "
          f"(hot tweet: {x['hot_tweet_likes']:,} likes)")


if __name__ == "__main__":
    sys.exit(main())
