"""Moderation's Cassandra writes (CassandraStore.save_judged) with one partition per request
against several partitions on the same replicas per UNLOGGED batch (adapters/cql.execute_grouped).

    .venv/bin/python -m bench.cassandra_writes [--batch 200 --rounds 6 --partitions 1,4,8,8/none,10/none]

Needs the local stack. In its own keyspace, each round writes 10 batches of --batch new tweets
(each with its own author: a tweet's row and verdict, with a score for every signal, are one
partition, its author's index and history rows another) once per setting of --partitions, the settings interleaved round by round so
that the host's speed drifts over all of them alike. Per setting: tweets per second, wall time per
batch, CPU per tweet of the Cassandra process and of this client (cassandra-driver's Python
request path), and how many batches Cassandra warned were over its size threshold. A setting M
caps a request at M partitions and cql.REQUEST_BYTES_MAX bytes; M/none at M partitions only, M/B
at B bytes. The first setting is the baseline the others are compared with.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import subprocess
import time
from typing import Any

from adapters import cql, provision
from adapters.cassandra_store import CassandraStore
from bench.common import calibration_us, cpu_seconds, namespace, progress, write_results
from pipeline.model import Tweet
from pipeline.moderation import SCORES, Action
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
        # A score for every signal, as the moderator gives (the map is most of a verdict row's bytes).
        verdict = VerdictRecord(tweet_id, author, Action.ALLOW, MODEL, now, (),
                                {name: rng.random() for name in SCORES}, ())
        out.append((tweet, verdict, f"fp{tweet_id}"))
    return out


class Warnings(logging.Handler):
    """Counts the driver's reports of Cassandra's batch size warning."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.batches = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "Batch for" in record.getMessage():
            self.batches += 1


def setting(text: str) -> tuple[int, int | None]:
    """"8" -> (8, cql.REQUEST_BYTES_MAX); "8/none" -> (8, None); "8/2048" -> (8, 2048)."""
    m, _, most = text.partition("/")
    if not most:
        return int(m), cql.REQUEST_BYTES_MAX
    return int(m), None if most == "none" else int(most)


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
    totals = {m: {"wall_s": 0.0, "server_cpu_s": 0.0, "client_cpu_s": 0.0, "tweets": 0, "warned": 0}
              for m in args.partitions}
    warnings = Warnings()
    logging.getLogger("cassandra").addHandler(warnings)
    default_bytes = cql.REQUEST_BYTES_MAX
    try:
        await store.save_judged(judged(args.batch, rng))  # prepared statements, connections: not counted
        for r in range(args.rounds):
            progress(f"round {r + 1}/{args.rounds}")
            for m in args.partitions:
                store.partitions_per_request, most_bytes = setting(m)
                cql.REQUEST_BYTES_MAX = most_bytes if most_bytes is not None else 10**12
                batches = [judged(args.batch, rng) for _ in range(BATCHES_PER_ROUND)]
                warned = warnings.batches
                server, client, t0 = cpu_seconds(pid), time.process_time(), time.perf_counter()
                for batch in batches:
                    await store.save_judged(batch)
                t = totals[m]
                t["wall_s"] += time.perf_counter() - t0
                t["server_cpu_s"] += cpu_seconds(pid) - server
                t["client_cpu_s"] += time.process_time() - client
                t["tweets"] += args.batch * BATCHES_PER_ROUND
                t["warned"] += warnings.batches - warned
    finally:
        cql.REQUEST_BYTES_MAX = default_bytes
        logging.getLogger("cassandra").removeHandler(warnings)
        await store.close()
        provision.drop(settings)
    rows = {}
    for m, t in totals.items():
        n = t["tweets"]
        rows[str(m)] = {"tweets_per_s": round(n / t["wall_s"]),
                        "ms_per_batch": round(1000 * t["wall_s"] / (n / args.batch), 1),
                        "cassandra_cpu_us_per_tweet": round(1e6 * t["server_cpu_s"] / n, 1),
                        "client_cpu_us_per_tweet": round(1e6 * t["client_cpu_s"] / n, 1),
                        "batches_over_the_size_warning": t["warned"]}
    base = rows[str(args.partitions[0])]
    for row in rows.values():
        row["speed_vs_baseline"] = round(row["tweets_per_s"] / base["tweets_per_s"], 2)
    return {"batch_tweets": args.batch, "rounds": args.rounds, "calibration_us": calibration_us(),
            "by_partitions_per_request": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=200, help="tweets per save_judged call (a moderation batch)")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--partitions", type=lambda v: [x for x in v.split(",") if setting(x)],
                   default=["1", "4", "8", "8/none", "10/none"],
                   help="partitions per request to compare, each M (and the bytes cap), M/none or M/BYTES; "
                        "the first is the baseline")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    results = asyncio.run(measure(args))
    for m, row in results["by_partitions_per_request"].items():
        print(f"{m:>7} partition(s) a request: {row['tweets_per_s']:,} tweets/s ({row['speed_vs_baseline']}x), "
              f"{row['ms_per_batch']} ms per {args.batch}-tweet batch; CPU per tweet: Cassandra "
              f"{row['cassandra_cpu_us_per_tweet']} us, client {row['client_cpu_us_per_tweet']} us; batches over "
              f"Cassandra's size warning {row['batches_over_the_size_warning']}")
    write_results("cassandra_writes", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
