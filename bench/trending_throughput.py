"""Hashtag events per second through the trending agent, next to a no-op faust agent.

    .venv/bin/python -m bench.trending_throughput [--events 3000000 --single-events 150000]

Needs the local stack. Each phase runs in its own namespace: it produces a backlog to
trending.hashtags, then times how long (a) a faust worker whose agent does nothing
(bench/noop_worker.py) and (b) a Starling worker (the trending agent decoding, validating and
counting every observation, ranking every `trending_publish_s`) take to consume it, each from the
start, each in its own process. Rates are taken from the first committed offset to the last, so
the worker's start is left out (it is reported apart).

- packed: what the fanout agent produces, `hashtags.observed` records, each holding one batch's
  observations for one partition. The backlog is built with the fanout agent's own functions
  (pipeline/engagement.py) from batches of `batch_max` tweets, each with 1-3 Zipf-distributed tags
  out of `--tags`, spread over five regions.
- single: the retired format, one `hashtag.observed` record per observation, as the fanout agent
  produced it before: the per-record cost that packing removes, measured in the same run.

The issue's goal is 50,000 hashtag events/s per worker process; Flink does ~22,000 events/s per
core on Nexmark Q5. Here tweets are at most a minute old, so nothing leaves a window during the
run: the figure is the cost of counting. What leaving the windows later costs is measured on the
tracker alone (docs/TRENDING.md, "Throughput").
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from typing import Any

from adapters import provision
from bench.common import calibration_us, namespace, noop_service, produce_events, progress, time_drain, write_results
from bench.write_api import ROOMY
from pipeline.engagement import pack_observations
from pipeline.events import Event
from pipeline.snowflake import Snowflake
from pipeline.settings import Settings
from pipeline.topology import load_topology
from stack import launcher
from starling import local

IDS = Snowflake(612)
REGIONS = ("US", "FR", "BR", "JP", None)
# Tags per tweet: most carry one, some two or three (the figures' unit is the observation).
TAGS_PER_TWEET = (1, 1, 1, 2, 2, 3)


class Zipf:
    def __init__(self, n_tags: int, rng: random.Random) -> None:
        self.tags = [f"tag{i}" for i in range(n_tags)]
        self.cum = [0.0] * n_tags
        total = 0.0
        for i in range(n_tags):
            total += 1 / (i + 1)
            self.cum[i] = total
        self.rng = rng

    def draw(self, k: int) -> list[str]:
        return self.rng.choices(self.tags, cum_weights=self.cum, k=k)


def observations(n: int, n_tags: int, batch_tweets: int, seed: int) -> list[list[tuple[int, dict[str, Any]]]]:
    """n observations, in fan-out batches of `batch_tweets` tweets: (source event id, observation)."""
    rng = random.Random(seed)
    zipf = Zipf(n_tags, rng)
    now = int(time.time() * 1000)
    batches: list[list[tuple[int, dict[str, Any]]]] = [[]]
    made = tweets = 0
    while made < n:
        if tweets == batch_tweets:
            batches.append([])
            tweets = 0
        tweet_id, author, at = IDS.next_id(), rng.randint(1, 10**6), now - rng.randint(0, 60_000)
        region = rng.choice(REGIONS)
        for tag in dict.fromkeys(zipf.draw(min(rng.choice(TAGS_PER_TWEET), n - made))):
            o: dict[str, Any] = {"tag": tag, "tweet_id": str(tweet_id), "author_id": str(author), "at": at,
                                 "present": True}
            if region:
                o["region"] = region
            batches[-1].append((IDS.next_id(), o))
            made += 1
        tweets += 1
    return batches


def as_single(source_id: int, o: dict[str, Any]) -> Event:
    data = {k: o[k] for k in ("tag", "tweet_id", "present", "region") if k in o}
    return Event(source_id, "hashtag.observed", 1, o["at"], int(o["author_id"]), data)


def phase(name: str, records: list[Event], per_record: float) -> dict[str, Any]:
    """Produce `records` in a fresh namespace, then time the no-op and the trending worker on them."""
    settings, env = namespace(f"trending-tp-{name}", ROOMY)
    provision.create_topics(settings)
    provision.apply_cql_schema(settings)
    tags = {o["tag"] for r in records for o in (r.data["observations"] if r.type == "hashtags.observed" else [r.data])}
    out: dict[str, Any] = {"records": len(records), "events_per_record": round(per_record, 1), "tags": len(tags)}
    progress(f"{name}: producing {len(records):,} records ({per_record:.1f} hashtag events each)")
    t = time.monotonic()
    asyncio.run(produce_events(settings, records))
    out["produce_s"] = round(time.monotonic() - t, 1)
    worker = next(s for s in local.apps(settings, env) if s.name == "worker")
    noop = noop_service(settings, env, worker)
    try:
        for agent, svc, group in (("noop_agent", noop, f"{settings.app_id}-noop"),
                                  ("trending_agent", worker, settings.app_id)):
            progress(f"{name}: {agent} consuming the backlog")
            timing = time_drain(settings, svc, "trending.hashtags", group)
            records_per_s = timing.pop("measured_records") / timing.pop("measured_s")
            out[agent] = {**timing, "records_per_s": round(records_per_s),
                          "events_per_s": round(records_per_s * per_record)}
    finally:
        launcher.down([noop, worker])
        provision.drop(settings)
    out["trending_share_of_noop"] = round(out["trending_agent"]["events_per_s"] / out["noop_agent"]["events_per_s"], 3)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=3_000_000, help="hashtag events, packed phase")
    p.add_argument("--single-events", type=int, default=150_000, help="hashtag events, one-per-record phase (0: skip)")
    p.add_argument("--tags", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=9)
    args = p.parse_args(argv)
    topo = load_topology(Settings.from_env().topology_path)
    partitions = topo.topics["trending.hashtags"].partitions
    batch_tweets = topo.tunables.batch_max
    results: dict[str, Any] = {"calibration_us": calibration_us(), "tags": args.tags, "batch_tweets": batch_tweets}

    progress(f"packing {args.events:,} hashtag events from batches of {batch_tweets} tweets")
    batches = observations(args.events, args.tags, batch_tweets, args.seed)
    packed = [r for b in batches for r in pack_observations(b, partitions)]
    results["packed"] = phase("packed", packed, args.events / len(packed))
    if args.single_events:
        singles = [as_single(s, o) for b in observations(args.single_events, args.tags, batch_tweets, args.seed + 1)
                   for s, o in b]
        results["single"] = phase("single", singles, 1.0)
        results["packing_speedup"] = round(results["packed"]["trending_agent"]["events_per_s"]
                                           / results["single"]["trending_agent"]["events_per_s"], 1)

    print()
    for name in ("packed", "single"):
        if name in results:
            r = results[name]
            print(f"{name:>6} ({r['events_per_record']:>5} events/record): no-op faust agent "
                  f"{r['noop_agent']['events_per_s']:>9,} events/s ({r['noop_agent']['records_per_s']:,} records/s); "
                  f"trending agent {r['trending_agent']['events_per_s']:>7,} events/s "
                  f"({r['trending_agent']['records_per_s']:,} records/s); worker RSS after "
                  f"{r['trending_agent']['rss_mib_after']:,.0f} MiB (no-op {r['noop_agent']['rss_mib_after']:,.0f} MiB), "
                  f"{r['tags']:,} tags")
    print(f"goal: 50,000 hashtag events/s per worker process; packing speed-up "
          f"{results.get('packing_speedup', '-')}x; worker start left out (first commit after "
          f"{results['packed']['trending_agent']['first_commit_s']} s)")
    write_results("trending_throughput", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
