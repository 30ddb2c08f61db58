"""Hashtag events per second through the trending agent, next to a no-op faust agent.

    .venv/bin/python -m bench.trending_throughput [--events 200000 --tags 50000]

Needs the local stack. In its own namespace it produces a backlog of hashtag.observed events
(Zipf-distributed tags, a few regions, distinct tweets) to trending.hashtags, then times how long
(a) a faust worker whose agent does nothing (bench/noop_worker.py) and (b) a Starling worker (the
trending agent decoding, validating and counting every event, ranking every
`trending_publish_s`) take to consume it, each from the start, each in its own process. The issue's
goal is 50,000 events/s per worker process; Flink does ~22,000 events/s per core on Nexmark Q5.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from typing import Any

from adapters import provision
from adapters.kafka import EventProducer
from bench.common import Lag, calibration_us, namespace, progress, write_results
from bench.write_api import ROOMY
from pipeline.events import Event
from pipeline.snowflake import Snowflake
from pipeline.topology import load_topology
from stack import launcher, probes
from stack.services import Service
from starling import local

IDS = Snowflake(612)
REGIONS = ("US", "FR", "BR", "JP", None)


def zipf_tags(n_tags: int, n: int, rng: random.Random) -> list[str]:
    weights = [1 / (i + 1) for i in range(n_tags)]
    return [f"tag{i}" for i in rng.choices(range(n_tags), weights=weights, k=n)]


async def produce(settings: Any, n: int, n_tags: int, seed: int) -> None:
    rng = random.Random(seed)
    producer = EventProducer(settings, load_topology(settings.topology_path), **{"linger.ms": 20})
    now = int(time.time() * 1000)
    tags = zipf_tags(n_tags, n, rng)
    try:
        for i in range(0, n, 5000):
            batch = []
            for j in range(i, min(n, i + 5000)):
                data: dict[str, Any] = {"tag": tags[j], "tweet_id": str(IDS.next_id()), "present": True}
                region = rng.choice(REGIONS)
                if region:
                    data["region"] = region
                batch.append(Event(IDS.next_id(), "hashtag.observed", 1, now - rng.randint(0, 60_000),
                                   rng.randint(1, 10**6), data))
            await asyncio.gather(*(producer.send_event(e) for e in batch))
    finally:
        producer.close()


async def drain(settings: Any, group: str, timeout_s: float = 900) -> float:
    lag = Lag(settings, "trending.hashtags", group=group)
    try:
        return await lag.zero(timeout_s)
    finally:
        lag.close()


def noop_service(settings: Any, env: dict[str, str], base: Service) -> Service:
    group = f"{settings.app_id}-noop"
    return Service(name="noop", cfg=base.cfg, ready_timeout_s=120, stop_grace_s=30, ports=(),
                   marker="-m bench.noop_worker", prepare=lambda: [sys.executable, "-m", "bench.noop_worker"],
                   env=env, probe=lambda: probes.consumer_group(settings.kafka_bootstrap, group))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--tags", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=9)
    args = p.parse_args(argv)
    settings, env = namespace("trending-tp", ROOMY)
    provision.create_topics(settings)
    provision.apply_cql_schema(settings)
    results: dict[str, Any] = {"calibration_us": calibration_us(), "events": args.events, "tags": args.tags}
    progress(f"producing {args.events:,} hashtag.observed events ({args.tags:,} Zipf tags)")
    t = time.monotonic()
    asyncio.run(produce(settings, args.events, args.tags, args.seed))
    results["produce_s"] = round(time.monotonic() - t, 1)
    worker = next(s for s in local.apps(settings, env) if s.name == "worker")
    noop = noop_service(settings, env, worker)
    try:
        for name, svc, group in (("noop_agent", noop, f"{settings.app_id}-noop"),
                                 ("trending_agent", worker, settings.app_id)):
            progress(f"{name}: consuming the backlog")
            t0 = time.monotonic()
            launcher.up([svc])
            done = asyncio.run(drain(settings, group))
            launcher.down([svc])
            seconds = done - t0
            results[name] = {"seconds_incl_start": round(seconds, 2), "events_per_s": round(args.events / seconds)}
    finally:
        launcher.down([noop, worker])
        provision.drop(settings)
    results["trending_share_of_noop"] = round(results["trending_agent"]["events_per_s"]
                                              / results["noop_agent"]["events_per_s"], 3)
    print(f"\nno-op faust agent: {results['noop_agent']['events_per_s']:,} events/s; "
          f"trending agent: {results['trending_agent']['events_per_s']:,} events/s per worker process "
          f"({results['trending_share_of_noop']:.0%} of the no-op rate; goal 50,000/s); "
          f"times include the worker's start (~3 s)")
    write_results("trending_throughput", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
