"""Moderation's Cassandra writes (CassandraStore.save_judged) with one partition per request
against several partitions on the same replicas per UNLOGGED batch (adapters/cql.execute_grouped).

    .venv/bin/python -m bench.cassandra_writes [--batch 200 --rounds 6 --partitions 1,4,8,10]

Needs the local stack. In its own keyspace, each round writes 10 batches of --batch new tweets
(each with its own author: a tweet's row and verdict are one partition, its author's index and
history rows another) once per setting of --partitions, the settings interleaved round by round so
that the host's speed drifts over all of them alike. Per setting: tweets per second, wall time per
batch, and CPU per tweet of the Cassandra process and of this client (cassandra-driver's Python
request path). The first setting is the baseline the others are compared with.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import time
from typing import Any

from adapters import provision
from adapters.cassandra_store import CassandraStore
from bench.common import calibration_us, cpu_seconds, namespace, progress, write_results
from pipeline.model import Tweet
from pipeline.moderation import Action
from pipeline.snowflake import Snowflake
from pipeline.verdicts import MODEL, VerdictRecord

IDS = Snowflake(614)
BATCHES_PER_ROUND = 10


def judged(n: int, rng: random.Random) -> list[tuple[Tweet, VerdictRecord, str]]:
    now = int(time.time() * 1000)
    out = []
    for _ in range(n):
        tweet_id, author = IDS.next_id(), rng.randrange(1, 10**15)
        tweet = Tweet(tweet_id=tweet_id, author_id=author, text=f"bench tweet {tweet_id} #fanout with a few words",
                      reply_to=None, quote_of=None, created_at=now)
        verdict = VerdictRecord(tweet_id, author, Action.ALLOW, MODEL, now, (), {"toxicity": 0.1}, ())
        out.append((tweet, verdict, f"fp{tweet_id}"))
    return out


def cassandra_pid() -> int:
    found = subprocess.run(["pgrep", "-f", "CassandraDaemon"], capture_output=True, text=True).stdout.split()
    if not found:
        raise SystemExit("no Cassandra process: start the stack (.venv/bin/starling stack up)")
    return int(found[0])


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    settings, _env = namespace("cassandra-writes")
    provision.apply_cql_schema(settings)
    store = await CassandraStore.open(settings)
    pid, rng = cassandra_pid(), random.Random(args.seed)
    totals = {m: {"wall_s": 0.0, "server_cpu_s": 0.0, "client_cpu_s": 0.0, "tweets": 0} for m in args.partitions}
    try:
        await store.save_judged(judged(args.batch, rng))  # prepared statements, connections: not counted
        for r in range(args.rounds):
            progress(f"round {r + 1}/{args.rounds}")
            for m in args.partitions:
                store.partitions_per_request = m
                batches = [judged(args.batch, rng) for _ in range(BATCHES_PER_ROUND)]
                server, client, t0 = cpu_seconds(pid), time.process_time(), time.perf_counter()
                for batch in batches:
                    await store.save_judged(batch)
                t = totals[m]
                t["wall_s"] += time.perf_counter() - t0
                t["server_cpu_s"] += cpu_seconds(pid) - server
                t["client_cpu_s"] += time.process_time() - client
                t["tweets"] += args.batch * BATCHES_PER_ROUND
    finally:
        await store.close()
        provision.drop(settings)
    rows = {}
    for m, t in totals.items():
        n = t["tweets"]
        rows[str(m)] = {"tweets_per_s": round(n / t["wall_s"]),
                        "ms_per_batch": round(1000 * t["wall_s"] / (n / args.batch), 1),
                        "cassandra_cpu_us_per_tweet": round(1e6 * t["server_cpu_s"] / n, 1),
                        "client_cpu_us_per_tweet": round(1e6 * t["client_cpu_s"] / n, 1)}
    base = rows[str(args.partitions[0])]
    for row in rows.values():
        row["speed_vs_baseline"] = round(row["tweets_per_s"] / base["tweets_per_s"], 2)
    return {"batch_tweets": args.batch, "rounds": args.rounds, "calibration_us": calibration_us(),
            "by_partitions_per_request": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=200, help="tweets per save_judged call (a moderation batch)")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--partitions", type=lambda v: [int(x) for x in v.split(",")], default=[1, 4, 8, 10],
                   help="partitions per request to compare; the first is the baseline")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    results = asyncio.run(measure(args))
    for m, row in results["by_partitions_per_request"].items():
        print(f"{m:>3} partition(s) a request: {row['tweets_per_s']:,} tweets/s ({row['speed_vs_baseline']}x), "
              f"{row['ms_per_batch']} ms per {args.batch}-tweet batch; CPU per tweet: Cassandra "
              f"{row['cassandra_cpu_us_per_tweet']} us, client {row['client_cpu_us_per_tweet']} us")
    write_results("cassandra_writes", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
