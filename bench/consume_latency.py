"""How late records reach a faust agent whose event loop is sometimes busy, by fetch wait.

    python -m bench.consume_latency [--rate 150] [--block-ms 400] [--block-every 100] [--waits 1500,100]

A faust worker (the Starling consumer transport, adapters/faust_transport.py) consumes one busy
topic of 6 partitions beside idle ones, as a Starling worker does (retry, graph and user topics
are idle most of the time). Its agent holds the event loop for --block-ms after every
--block-every records, as a batch's CPU work does. A producer sends --rate records/s; each
record's age when the agent sees it (now minus its Kafka timestamp) is its lateness. Each wait
in --waits runs in its own worker process, one after the other, --rounds times interleaved;
1,500 ms is faust's own fetch wait (the baseline), the others what topology.yaml may choose.
Needs the local stack's Kafka (`starling stack up`).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import progress, summary_ms, write_results
from pipeline.settings import Settings

PARTITIONS = 6
WARMUP_S = 3  # records of the first seconds are not counted (group join, first fetches)


def child(args: argparse.Namespace) -> None:
    """One worker process: topics, the agent, the producer; writes its figures to --out, removes its topics and state, exits."""
    import faust
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    from adapters.faust_transport import use_short_fetch_wait

    settings = Settings.from_env()
    run = secrets.token_hex(3)
    busy = settings.topic(f"bench-consume-{run}-busy")
    idle = [settings.topic(f"bench-consume-{run}-idle-{i}") for i in range(args.idle_topics)]
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for future in admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in [busy, *idle]]).values():
        future.result(30)
    datadir = settings.state_dir / "bench" / "consume_latency" / run
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(f"bench-consume-{run}", broker=f"kafka://{settings.kafka_bootstrap}", store="memory://",
                    key_serializer="raw", value_serializer="raw", web_enabled=False, topic_disable_leader=True,
                    consumer_auto_offset_reset="earliest", topic_allow_declare=False, datadir=str(datadir),
                    broker_commit_interval=1.0, broker_commit_every=2000)
    use_short_fetch_wait(app, args.wait)
    ages: list[float] = []
    started = threading.Event()

    async def busy_agent(stream: Any) -> None:
        seen = 0
        async for ev in stream.events():
            started.set()
            if ev.message.key != b"warm":
                ages.append(time.time() - ev.message.timestamp)
            seen += 1
            if seen % args.block_every == 0:
                time.sleep(args.block_ms / 1000)  # the loop held, as by a batch's CPU work

    async def idle_agent(stream: Any) -> None:
        async for _ev in stream.events():
            pass

    app.agent(app.topic(busy, key_serializer="raw", value_serializer="raw"), name="busy")(busy_agent)
    for i, name in enumerate(idle):
        app.agent(app.topic(name, key_serializer="raw", value_serializer="raw"), name=f"idle{i}")(idle_agent)

    def produce() -> None:
        producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 2, "acks": "all"})
        # One record first: the agent has its partitions once it sees it.
        while not started.is_set():
            producer.produce(busy, key=b"warm", value=b"x")
            producer.flush(5)
            started.wait(0.5)
        t0 = time.monotonic()
        n = args.rate * args.duration
        for i in range(n):
            delay = t0 + i / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            producer.produce(busy, key=str(i).encode(), value=b"x" * 200)
            producer.poll(0)
        producer.flush(30)
        deadline = time.monotonic() + 30
        while len(ages) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        counted = ages[args.rate * WARMUP_S:]
        # faust's worker turns stdout into log lines: the result goes to the parent's file.
        Path(args.out).write_text(json.dumps({"wait_ms": args.wait, "records": len(counted), "lost": n - len(ages),
                                              "lateness": summary_ms(counted)}))
        admin.delete_topics([busy, *idle])
        shutil.rmtree(datadir, ignore_errors=True)
        os._exit(0)

    threading.Thread(target=produce, daemon=True).start()
    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    app.main()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=int, default=150, help="records per second on the busy topic")
    p.add_argument("--duration", type=int, default=20)
    p.add_argument("--idle-topics", type=int, default=8)
    p.add_argument("--block-ms", type=float, default=400, help="how long the agent holds the loop each time")
    p.add_argument("--block-every", type=int, default=100, help="... after this many records")
    p.add_argument("--waits", type=lambda v: [int(x) for x in v.split(",")], default=[1500, 100],
                   help="fetch waits to compare, ms (1500 is faust's own)")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--wait", type=int, default=100, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args)
        return 0
    busy_share = args.block_ms / 1000 * args.rate / args.block_every
    if busy_share >= 0.9:
        raise SystemExit(f"the agent would be busy {busy_share:.0%} of the time: no consumer keeps up, lower --block-ms")
    runs: list[dict[str, Any]] = []
    for r in range(args.rounds):
        for wait in args.waits:
            progress(f"round {r + 1}: fetch wait {wait} ms, {args.rate} records/s for {args.duration}s, "
                     f"loop held {args.block_ms:g} ms every {args.block_every} records")
            with tempfile.TemporaryDirectory() as tmp:
                result = Path(tmp) / "result.json"
                out = subprocess.run([sys.executable, "-m", "bench.consume_latency", "--child", "--wait", str(wait),
                                      "--out", str(result), *(argv if argv is not None else sys.argv[1:])],
                                     capture_output=True, text=True, timeout=args.duration + 120)
                if not result.exists():
                    raise SystemExit(f"the worker for wait {wait} ms wrote no result:\n{out.stderr[-3000:]}")
                runs.append(json.loads(result.read_text()))
            late = runs[-1]["lateness"]
            print(f"fetch wait {wait:>5} ms: lateness p50 {late['p50_ms']:.0f} ms, p99 {late['p99_ms']:.0f} ms, "
                  f"max {late['max_ms']:.0f} ms ({runs[-1]['records']} records, {runs[-1]['lost']} not seen)")
    write_results("consume_latency", {
        "rate_per_s": args.rate, "duration_s": args.duration, "partitions": PARTITIONS, "idle_topics": args.idle_topics,
        "loop_held_ms": args.block_ms, "held_every_records": args.block_every, "loop_busy_share": round(busy_share, 2),
        "baseline_wait_ms": 1500, "runs": runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
