"""POST /v1/tweets: latency and throughput at fixed offered rates, next to confluent-kafka's raw rate.

    .venv/bin/python -m bench.write_api [--rates 500,1000,2000] [--duration 20]

Needs the local stack (`starling stack up`). Runs in its own namespace (topics, keyspace, Redis
db 3), starts one API process with roomy rate limits (the limiter still runs: one Lua call per
request), and drives it with bench/node/openloop.mjs at each offered rate: open loop, latency
measured from each request's due time (autocannon was tried first: with many connections it
sends in bursts and reported p50 8 ms for a bare health check). In the same run it measures the
floor under every write: confluent-kafka producing the same records with the same settings
(idempotent, acks=all), as a bulk rate and as one-at-a-time acknowledged latency.

Caveat: the load generator and the API share the machine's 2 cores with Kafka, Cassandra, Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from confluent_kafka import Producer

from adapters import provision
from adapters.cassandra_store import CassandraStore, write_ts_us
from adapters.kafka import producer_config
from api.auth import mint_token
from bench.common import namespace, open_loop, progress, summary_ms, tree_cpu_seconds, write_results
from pipeline.events import Event, encode
from pipeline.model import User
from pipeline.snowflake import Snowflake
from stack import launcher
from starling import local

# Seconds at each rate before counting, on the same connections (bench/common.open_loop).
WARMUP_S = 3
TEXT = "Benchmarking the write path of #starling with a tweet of ordinary length, about a hundred chars."
ROOMY = {f"api.rate_limits.{c}": {"per_user": 10**9, "per_ip": 10**9}
         for c in ("tweet_writes", "tweet_reads", "timeline_reads", "follows", "searches", "account_writes",
                   "graph_reads")}


def raw_produce(settings: Any, topic: str, n: int) -> dict[str, Any]:
    """Bulk: n records as fast as the client goes. Sequential: each one awaited before the next."""
    sf = Snowflake(5)
    values = [encode(Event(sf.next_id(), "tweet.created", 1, int(time.time() * 1000), 42,
                           {"tweet_id": str(sf.next_id()), "text": TEXT})) for _ in range(n)]
    producer = Producer(producer_config(settings))
    t0 = time.perf_counter()
    for v in values:
        while True:
            try:
                producer.produce(topic, value=v, key=b"42")
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(60)
    bulk_rate = n / (time.perf_counter() - t0)

    latencies = []
    for v in values[:2000]:
        t = time.perf_counter()
        producer.produce(topic, value=v, key=b"42")
        producer.flush(10)
        latencies.append(time.perf_counter() - t)
    return {"bulk_records_per_s": round(bulk_rate), "acked_one_at_a_time": summary_ms(latencies),
            "record_bytes": len(values[0])}


async def register(settings: Any, user_ids: list[int]) -> None:
    cass = await CassandraStore.open(settings)
    now = int(time.time() * 1000)
    try:
        for uid in user_ids:
            await cass.claim_handle(f"b{uid % 10**12}", uid)
        await cass.save_users([(User(uid, f"b{uid % 10**12}", "Bench", "", False, None, now), write_ts_us(now))
                               for uid in user_ids])
    finally:
        await cass.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", default="500,1000,2000")
    p.add_argument("--duration", type=int, default=20, help="seconds per offered rate")
    p.add_argument("--raw-records", type=int, default=100_000)
    p.add_argument("--users", type=int, default=50, help="authors the requests rotate through")
    p.add_argument("--linger-ms", type=float, default=None, help="override api.produce_linger_ms")
    args = p.parse_args(argv)
    rates = [int(r) for r in args.rates.split(",")]

    patch = dict(ROOMY)
    if args.linger_ms is not None:
        patch["api.produce_linger_ms"] = args.linger_ms
    settings, env = namespace("write-api", patch)
    progress(f"namespace {settings.topic_prefix} / {settings.keyspace}")
    provision.create_topics(settings)
    provision.apply_cql_schema(settings)
    users = [Snowflake(6).next_id() for _ in range(args.users)]
    asyncio.run(register(settings, users))
    [api] = [s for s in local.apps(settings, env) if s.name == "api"]
    results: dict[str, Any] = {"offered_rates": [], "users": len(users)}
    try:
        progress(f"baseline: confluent-kafka producing {args.raw_records} records, then 2,000 one at a time")
        results["confluent_kafka_raw"] = raw_produce(settings, settings.topic("ingest.tweets"), args.raw_records)
        launcher.up([api])
        pid = int(api.pid_file.read_text())
        url = f"http://127.0.0.1:{settings.api_port}/v1/tweets"
        tokens = [mint_token(settings, u, ttl_s=3600) for u in users]
        body = [json.dumps({"text": TEXT})]
        load = {"method": "POST", "headers": {"Content-Type": "application/json"}, "bodies": body, "tokens": tokens}
        for rate in rates:
            progress(f"offered {rate} requests/s for {args.duration}s, after {WARMUP_S}s at that rate (not counted)")
            at: dict[str, float] = {}

            def counting() -> None:
                at.update(cpu=tree_cpu_seconds(pid), t=time.monotonic())

            # The warm-up opens the connections the counted requests then use (bench/common.open_loop).
            r = open_loop(url, rate, args.duration, **load, warmup_s=WARMUP_S, counting=counting)
            cpu, seconds = tree_cpu_seconds(pid) - at["cpu"], time.monotonic() - at["t"]
            r["accepted_202"] = r["statuses"].get("202", 0)
            r["api_cpu_ms_per_request"] = round(cpu * 1000 / (r["completed_per_s"] * seconds), 3)
            results["offered_rates"].append(r)
    finally:
        launcher.down([api])
        provision.drop(settings)

    raw = results["confluent_kafka_raw"]
    from bench.common import calibration_us
    print(f"\nmachine calibration: {calibration_us()} us (lower is faster; see bench/common.py)")
    print(f"\nconfluent-kafka raw: {raw['bulk_records_per_s']:,} records/s bulk; one acked record at a time "
          f"p50 {raw['acked_one_at_a_time']['p50_ms']} ms, p99 {raw['acked_one_at_a_time']['p99_ms']} ms")
    print(f"{'offered/s':>10} {'done/s':>8} {'202':>7} {'other':>6} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7} {'API CPU ms/req':>15}")
    for row in results["offered_rates"]:
        lat = row["latency_ms"]
        other = row["requests"] - row["accepted_202"]
        print(f"{row['offered_per_s']:>10} {row['completed_per_s']:>8} {row['accepted_202']:>7} {other:>6} "
              f"{lat['p50']:>7} {lat['p90']:>7} {lat['p99']:>7} {lat['max']:>7} {row['api_cpu_ms_per_request']:>15}")
    goal = next((r for r in results["offered_rates"] if r["offered_per_s"] == 1000), None)
    if goal:
        results["goal_p99_under_20ms_at_1000"] = goal["latency_ms"]["p99"] < 20 and goal["accepted_202"] == goal["requests"]
        print(f"goal p99 < 20 ms at 1,000/s: {'met' if results['goal_p99_under_20ms_at_1000'] else 'NOT met'} "
              f"(p99 {goal['latency_ms']['p99']} ms)")
    write_results("write_api", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
