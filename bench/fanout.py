"""Hybrid fan-out on a power-law graph: fan-out throughput, delivery latency (pushed and pulled
authors), home-timeline reads, Redis bytes per entry, next to this machine's ceilings.

    .venv/bin/python -m bench.fanout [--users 10000 --mean-followers 30 --rate 150,200,250 --duration 30]

Needs the local stack. In its own namespace it loads a generated graph straight into Cassandra
(setup, not the measured path): most accounts with few followers (Pareto), a few middle-band
accounts and a few celebrities, bands scaled to the graph (--push-all-below, --push-active-below;
the issue's scale is --users 100000 --mean-followers 100 --push-all-below 10000
--push-active-below 50000: topology.yaml's 100,000 cannot be crossed with 100,000 users, so the
celebrities have 50,000-90,000 followers; 10 M follows take 11-22 min to load on 2 cores). A share
of users are active readers with built timelines. Then it waits, bounded, until Cassandra has
compacted and flushed what it was given (reported). Then, through the real pipeline (Kafka ->
worker -> Redis/Cassandra -> API), after a warm-up that is not measured, it produces tweets at
each steady rate of --rate (a comma-separated sweep) and measures:

- whether each rate was sustained: the driver sent it (open loop, sends not awaited one by one)
  and the worker's lag reached zero within SUSTAINED_DRAIN_S of the last tweet, and delivery
  latency did not trend up over the run (SUSTAINED_SLOPE_MS_PER_S; its p50 by third is printed); the issue's
  delivery figures are those of the highest rate sustained, and the highest rate sustained with
  delivery p99 under 1 s is reported beside it;
- fan-out throughput: timeline entries written per second (growth of the active timelines, over
  the time from the first tweet to the worker's lag reaching zero), against redis-benchmark's
  pipelined ZADD rate measured in the same run (the issue's ceiling: one key), and the same spread
  over as many keys as there are active timelines (what the key layout alone costs Redis);
- delivery latency from produce to visible through the API, polled for sampled tweets, separately
  for pushed and pulled (celebrity) authors; and that celebrity tweets reached no follower timeline;
- home-timeline reads at a fixed rate (open loop) and a bare aiohttp endpoint's ceiling (wrk);
  after each read rate, the same load on a bare aiohttp endpoint with as many processes (the
  floor: the latency this machine, as busy as it is then, gives any aiohttp server at that rate);
- Redis bytes per timeline entry (MEMORY USAGE / ZCARD).

`--api-processes N` runs the API with N server processes; `--compare-api-processes 1` then
repeats the reads with the API restarted with 1 process, in the same run. `--workers N` runs N
worker processes in one consumer group: today a second worker joining stalls the group for up to
faust's 60 s rebalance timeout (docs/ARCHITECTURE.md, "Known limits").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import pickle
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop
from cassandra import OperationTimedOut, WriteTimeout

from adapters import cql, provision
from adapters.cassandra_store import CassandraStore, write_ts_us
from adapters.graph_cache import GraphCache
from adapters.hot_cache import HotCache
from adapters.kafka import EventProducer, read_to_end
from adapters.redis_store import SENTINEL, TimelineCache, recent_key, timeline_key
from api.auth import mint_token
from bench.common import (GcLog, Lag, busiest, free_port, latency_trend, machine_cpu_seconds, machine_steal_seconds,
                          namespace, open_loop, probe_interval, process_cpu_seconds, progress, summary_ms,
                          tree_cpu_seconds, write_results)
from bench.write_api import ROOMY
from pipeline.events import Event, encode
from pipeline.graph import FollowerCount
from pipeline.model import Tweet, User
from pipeline import forwarding
from pipeline.routing import explicit_partition, partition_key
from pipeline.settings import Settings
from pipeline.snowflake import Snowflake
from pipeline.topology import load_topology
from stack import launcher, process
from stack.config import StackConfig
from stack.probes import consumer_group
from starling import local

IDS = Snowflake(9)
# Follow rows per Cassandra call while loading the graph.
LOAD_CHUNK = 100_000


def generate_graph(users: list[int], mean: float, middle: int, celebs: int, push_all_below: int,
                   push_active_below: int, rng: random.Random) -> dict[int, list[int]]:
    """author -> followers. Pareto (alpha 2, heavy tail) below the first band, then the few big ones."""
    n = len(users)
    followers: dict[int, list[int]] = {}
    alpha = 2.0
    scale = mean * (alpha - 1) / alpha
    for i, author in enumerate(users):
        if i < celebs:
            k = min(n - 1, rng.randint(push_active_below, max(push_active_below, int(n * 0.9))))
        elif i < celebs + middle:
            k = rng.randint(push_all_below, min(push_active_below - 1, n - 1))
        else:
            k = min(push_all_below - 1, n - 1, int(scale * rng.paretovariate(alpha)))
        pool = rng.sample(users, min(n, k + 1))
        followers[author] = [f for f in pool if f != author][:k]
    return followers


# A cold Cassandra, given millions of rows as fast as the driver sends them, can time a write out
# (a run died so a minute into the load). Every load write is idempotent (fixed timestamps): it is
# sent again, after a pause that grows with each attempt.
LOAD_ATTEMPTS = 5


async def _again_on_timeout(what: str, call: Callable[[], Awaitable[Any]]) -> Any:
    for attempt in range(1, LOAD_ATTEMPTS + 1):
        try:
            return await call()
        except (WriteTimeout, OperationTimedOut) as exc:
            if attempt == LOAD_ATTEMPTS:
                raise
            progress(f"  {what}: {type(exc).__name__}, sent again in {attempt} s (idempotent)")
            await asyncio.sleep(attempt)
    raise AssertionError("unreachable")


async def load(settings: Any, users: list[int], graph: dict[int, list[int]], policy: Any) -> int:
    """The users, their follows both ways, follower counts and the celebrity flags, into Cassandra
    (GRAPH_TABLES)."""
    cass = await CassandraStore.open(settings)
    now = int(time.time() * 1000)
    try:
        rows = [(User(u, f"u{u % 10**9}", "Bench", "", False, None, now), write_ts_us(now)) for u in users]
        await _again_on_timeout("users", lambda: cass.save_users(rows))
        # One table at a time, its rows in partition order (followers by followee, then followees
        # by follower), in chunks of whole partitions: each partition's rows go in full batches.
        following: dict[int, list[int]] = {}
        for author, fs in graph.items():
            for f in fs:
                following.setdefault(f, []).append(author)
        n_edges = sum(map(len, graph.values()))
        for table, lists, edge in (("followers_by_user", graph, lambda k, o: (o, k, True, now)),
                                   ("following_by_user", following, lambda k, o: (k, o, True, now))):
            chunk: list[tuple[int, int, bool, int]] = []
            done = 0
            for i, (key, others) in enumerate(lists.items(), 1):
                chunk += [edge(key, o) for o in others]
                if len(chunk) >= LOAD_CHUNK or i == len(lists):
                    await _again_on_timeout(table, lambda: cass.apply_edges("follow", chunk, tables=(table,)))
                    done += len(chunk)
                    chunk = []
                    progress(f"  {table}: {done:,}/{n_edges:,}")
        del following
        counts = {a: FollowerCount(len(fs), 0, 0) for a, fs in graph.items()}
        await _again_on_timeout("follower counts", lambda: cass.save_follower_counts(counts))
        flags = {a: policy.is_pulled(len(fs)) for a, fs in graph.items()}
        await cass.set_celebrities({a: True for a, f in flags.items() if f})
        return n_edges
    finally:
        await cass.close()


async def load_redis(settings: Any, graph: dict[int, list[int]], active: list[int], policy: Any) -> None:
    """Follower counts, and the active readers' built (empty) timelines and last reads, into Redis."""
    cache = TimelineCache.from_url(settings.redis_url, 800)
    graph_cache = GraphCache(cache.redis)
    try:
        await graph_cache.set_follower_counts({a: len(fs) for a, fs in graph.items()})
        for reader in active:
            await cache.fill(reader, [], ttl_s=policy.activity_window_s)
            await graph_cache.touch_active(reader, time.time())
        # The last-read set as a running system has it: complete (adapters/graph_cache.py).
        await graph_cache.repair_active(time.time())
    finally:
        await cache.close()


# What load() writes and the stages only read: --keep-graph keeps these tables (and the keyspace)
# for the next run with the same graph arguments, and empties every other table before reusing them.
GRAPH_TABLES = frozenset({"users", "users_by_handle", "followers_by_user", "following_by_user", "follower_counts",
                          "celebrities"})


def kept_graph_file(settings: Any, args: argparse.Namespace) -> Path:
    key = "-".join(str(v) for v in (args.users, args.mean_followers, args.middle, args.celebrities,
                                    args.push_all_below, args.push_active_below, args.active_share, args.seed))
    return settings.state_dir / f"kept-graph-{key}.pickle"


def reuse_kept_graph(settings: Any, path: Path) -> dict[str, Any] | None:
    """The graph a --keep-graph run left (users, follows, active readers, keyspace), if its keyspace
    is still there; its tables other than GRAPH_TABLES are emptied (an earlier run's tweets,
    verdicts, author histories and notifications would be read as this run's)."""
    if not path.exists():
        return None
    kept = pickle.loads(path.read_bytes())
    cluster = cql.blocking_cluster(list(settings.cassandra_hosts), settings.cassandra_port)
    try:
        session = cluster.connect()
        tables = [r.table_name for r in session.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (kept["keyspace"],))]
        if not GRAPH_TABLES <= set(tables):
            return None
        for table in sorted(set(tables) - GRAPH_TABLES):
            session.execute(f"TRUNCATE {kept['keyspace']}.{table}", timeout=120)
    finally:
        cluster.shutdown()
    return kept


# After the load Cassandra may still compact and flush what it was just given, on the cores the
# pipeline needs next: the first steady rate would pay for it. So the run waits until those pools
# are idle for a few polls in a row (bounded), and reports the wait (at 100,000 users on
# 2026-11-22 they were idle already: 3 s).
SETTLE_POOLS = ("CompactionExecutor", "MemtableFlushWriter")
SETTLE_QUIET_POLLS = 3
SETTLE_MAX_S = 1200


async def settle_cassandra(settings: Any) -> dict[str, Any]:
    """Wait until Cassandra's compaction and flush pools have no active or pending task
    (system_views.thread_pools), at most SETTLE_MAX_S."""
    cass = await CassandraStore.open(settings)
    try:
        stmt = await cql.prepare(cass.session, "SELECT name, active_tasks, pending_tasks, completed_tasks "
                                               "FROM system_views.thread_pools")

        async def pools() -> dict[str, dict[str, Any]]:
            return {r["name"]: r for r in await cql.execute(cass.session, stmt) if r["name"] in SETTLE_POOLS}

        t0, quiet = time.monotonic(), 0
        first = last = await pools()
        while quiet < SETTLE_QUIET_POLLS and time.monotonic() - t0 < SETTLE_MAX_S:
            await asyncio.sleep(1)  # a poll interval, not a readiness guess: the condition is checked
            last = await pools()
            quiet = quiet + 1 if all(p["active_tasks"] + p["pending_tasks"] == 0 for p in last.values()) else 0
        return {"waited_s": round(time.monotonic() - t0, 1), "settled": quiet >= SETTLE_QUIET_POLLS,
                "tasks_completed_meanwhile": {n: last[n]["completed_tasks"] - first[n]["completed_tasks"]
                                              for n in last if n in first}}
    finally:
        await cass.close()


async def cassandra_ops(settings: Any) -> dict[str, int]:
    """Requests Cassandra has served on this keyspace since it started, per table and kind
    ("reads tweets", "writes verdicts", ...; system_views' local latency tables), and the
    compactions and memtable flushes it has completed: diffed around a stage, what the stage
    asked of it."""
    cass = await CassandraStore.open(settings)
    try:
        out: dict[str, int] = {}
        for kind, table in (("reads", "local_read_latency"), ("writes", "local_write_latency"),
                            ("scans", "local_scan_latency")):
            stmt = await cql.prepare(cass.session, f"SELECT keyspace_name, table_name, count FROM system_views.{table}")
            for r in await cql.execute(cass.session, stmt):
                if r["keyspace_name"] == settings.keyspace and r["count"]:
                    out[f"{kind} {r['table_name']}"] = r["count"]
        stmt = await cql.prepare(cass.session, "SELECT name, completed_tasks FROM system_views.thread_pools")
        for r in await cql.execute(cass.session, stmt):
            if r["name"] in SETTLE_POOLS:
                out[f"tasks {r['name']}"] = r["completed_tasks"]
        return out
    finally:
        await cass.close()


def per_thousand(before: dict[str, int], after: dict[str, int], n: int) -> dict[str, float]:
    """What grew between two cassandra_ops() snapshots, per 1,000 of n (largest first)."""
    grown = {k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)}
    return {k: round(v * 1000 / max(n, 1), 1) for k, v in sorted(grown.items(), key=lambda kv: -kv[1])}


def redis_zadd_ceiling(port: int) -> float:
    """redis-benchmark's pipelined ZADD: one key, one member, updated again and again (the issue's
    ceiling)."""
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-n", "300000", "-P", "32", "-q", "-t", "zadd",
                          "--csv"], capture_output=True, text=True, check=True).stdout
    line = [l for l in out.splitlines() if "ZADD" in l][0]
    return float(line.split(",")[1].strip('"'))


# A database no namespace uses, flushed before and after the many-keys ceiling.
CEILING_DB = 15


def redis_zadd_many_keys_ceiling(port: int, keys: int) -> float:
    """The same pipelined ZADD spread over as many keys as there are active timelines, with new
    members (random scores): the write fan-out makes, without anything else fan-out does. Next to
    the issue's ceiling it separates what the key layout costs Redis from what the fan-out adds."""
    flush = ["redis-cli", "-p", str(port), "-n", str(CEILING_DB), "flushdb"]
    subprocess.run(flush, capture_output=True, check=True)
    try:
        out = subprocess.run(["redis-benchmark", "-p", str(port), "--dbnum", str(CEILING_DB), "-n", "300000", "-P",
                              "32", "-r", str(keys), "-q", "--csv", "zadd", "tl:__rand_int__", "__rand_int__",
                              "__rand_int__"], capture_output=True, text=True, check=True).stdout
    finally:
        subprocess.run(flush, capture_output=True, check=True)
    line = [l for l in out.splitlines() if l.lower().startswith('"zadd')][0]
    return float(line.split(",")[1].strip('"'))


@contextlib.contextmanager
def bare_aiohttp(processes: int = 1) -> Iterator[str]:
    """A bare aiohttp endpoint (a constant JSON body) served as the API is: uvloop, and with
    several processes, each binding the port with SO_REUSEPORT. Yields its URL once it answers."""
    port = free_port()
    code = ("import uvloop\nfrom aiohttp import web\n"
            "async def h(r): return web.json_response({'ok': True})\n"
            "app = web.Application(); app.router.add_get('/', h)\n"
            f"web.run_app(app, host='127.0.0.1', port={port}, access_log=None, print=None, "
            f"reuse_port={processes > 1}, loop=uvloop.new_event_loop())\n")
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(processes)]
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 20
        while subprocess.run(["curl", "-sf", url], capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the bare aiohttp endpoint did not answer within 20 s")
            time.sleep(0.2)
        yield url
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


def bare_aiohttp_ceiling(seconds: int = 10) -> float:
    """Requests/s of one bare process under wrk (closed loop, as fast as it answers)."""
    with bare_aiohttp() as url:
        out = subprocess.run(["wrk", "-t1", "-c32", f"-d{seconds}s", url],
                             capture_output=True, text=True, check=True).stdout
    return float([l for l in out.splitlines() if l.startswith("Requests/sec")][0].split()[1])


# Commands per pipeline of the benchmark's own bulk reads and writes (one pipeline of a million
# timed the client's socket write out).
CHUNK = 5000


async def timeline_entries(cache: TimelineCache, readers: list[int]) -> int:
    """Entries the readers' timelines hold (their lists' lengths without the sentinels)."""
    total = 0
    for i in range(0, len(readers), CHUNK):
        pipe = cache.redis.pipeline(transaction=False)
        for r in readers[i:i + CHUNK]:
            pipe.llen(timeline_key(r))
            pipe.lindex(timeline_key(r), 0)
        out = await pipe.execute()
        total += sum(n - (first == SENTINEL) for n, first in zip(out[::2], out[1::2]))
    return total


DELIVERY_TOPICS = ("ingest.tweets", "tweets.moderated")


async def lag_zero(settings: Any, timeout_s: float = 600, topics: tuple[str, ...] = DELIVERY_TOPICS) -> float:
    """When the worker's committed offsets reach the end of ingest.tweets (moderation), then of
    tweets.moderated (fan-out), or of `topics` in turn."""
    for topic in topics:
        lag = Lag(settings, topic)
        try:
            done = await lag.zero(timeout_s)
        finally:
            lag.close()
    return done


def tweet_created(author: int, tweet_id: int, text: str) -> Event:
    """A tweet.created event as a client's write would produce it, sent now."""
    return Event(IDS.next_id(), "tweet.created", 1, int(time.time() * 1000), author,
                 {"tweet_id": str(tweet_id), "text": text})


async def drive(settings: Any, topology: Any, graph: dict[int, list[int]], active: set[int], celebs: list[int],
                pushed_authors: list[int], rate: int, duration: int, rng: random.Random,
                poll_share: float = 0.0) -> dict[str, Any]:
    producer = EventProducer(settings, topology)
    # The driver shares the 2 cores with what it measures: acks are only gathered at the end, so
    # they are polled every SEND_TICK_S, not every millisecond (see below).
    producer.POLL_INTERVAL_S = SEND_TICK_S
    url = f"http://{settings.api_host}:{settings.api_port}/v1/timelines/home"
    latencies: dict[str, list[float]] = {"pushed": [], "pulled": []}
    misses = {"pushed": 0, "pulled": 0}
    probes: list[asyncio.Task[None]] = []
    sends: list[asyncio.Task[tuple[int, int]]] = []
    sent: list[tuple[int, int]] = []
    seen: list[tuple[int, float, float]] = []  # probed tweet, when it was visible (epoch s), latency
    polls = [0]  # requests the probes sent
    late: list[float] = []  # per probe that saw its tweet: since the poll before (how late it may be)
    missed: list[tuple[str, int, int, int]] = []  # kind, tweet, reader, author
    author_of: dict[int, int] = {}
    active_followers: dict[int, list[int]] = {}  # the readers a probe picks from, by author
    wall0 = time.time() - time.monotonic()

    async def probe(session: aiohttp.ClientSession, kind: str, tweet_id: int, reader: int, t0: float) -> None:
        headers = {"Authorization": f"Bearer {mint_token(settings, reader)}"}
        deadline, before = t0 + 20, t0
        while time.monotonic() < deadline:
            async with session.get(url, params={"since_id": str(tweet_id - 1), "limit": "100"}, headers=headers) as r:
                body = await r.json()
            polls[0] += 1
            now = time.monotonic()
            if any(t["id"] == tweet_id for t in body.get("data", [])):
                latencies[kind].append(now - t0)
                seen.append((tweet_id, wall0 + now, now - t0))
                late.append(now - before)
                return
            before = now
            await asyncio.sleep(probe_interval(now - t0, poll_share))
        misses[kind] += 1
        missed.append((kind, tweet_id, reader, author_of[tweet_id]))

    async with aiohttp.ClientSession() as session:
        t_start = time.monotonic()
        n = rate * duration
        for i in range(n):
            # A tick past the due time: the tweets due meanwhile go out together. A sleep per
            # tweet (and a 1 ms ack poll) cost the driver 0.13-0.16 cores at 700 tweets/s, this
            # 0.05 (scratch measurement, 10 s each); each tweet's latency still starts when it is
            # sent (t0 below).
            ahead = t_start + i / rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead + SEND_TICK_S)
            kind = "pulled" if i % (rate * 2) == 0 and celebs else "pushed"
            author = rng.choice(celebs) if kind == "pulled" else rng.choice(pushed_authors)
            tweet_id = IDS.next_id()
            # The tweet id makes every text unique: a text an author repeats is a duplicate, which
            # moderation rightly hides (each steady run restarts i at 0).
            ev = tweet_created(author, tweet_id, f"bench tweet {tweet_id} #fanout")
            t0 = time.monotonic()
            # Open loop: the send is not awaited here. Awaiting each acknowledgement in turn (as
            # this loop once did) held the offered rate to ~250 tweets/s whatever --rate asked.
            # Tasks start in the order they are made, so one author's tweets keep their order.
            sends.append(asyncio.create_task(producer.send_event(ev)))
            sent.append((author, tweet_id))
            author_of[tweet_id] = author
            if kind == "pulled" or i % max(1, rate // 5) == 0:
                readers = active_followers.get(author)
                if readers is None:  # a celebrity's 50,000-90,000 followers: filtered once a run
                    readers = active_followers[author] = [f for f in graph[author] if f in active]
                if readers:
                    probes.append(asyncio.create_task(probe(session, kind, tweet_id, rng.choice(readers), t0)))
        t_sent = time.monotonic()
        await asyncio.gather(*sends)  # every tweet acknowledged (a failed send fails the run)
        # The lag is watched while the last probes poll: a probe that misses polls on for its
        # whole deadline, which must not count as the pipeline being behind.
        t_done, _ = await asyncio.gather(lag_zero(settings), asyncio.gather(*probes))
    producer.close()
    return {"t_start": t_start, "t_sent": t_sent, "t_done": t_done, "sent": sent, "latencies": latencies,
            "misses": misses, "seen": seen, "polls": polls[0], "late": late,
            "missed": await explain_misses(settings, url, missed)}


async def warm_authors(settings: Any, topology: Any, authors: list[int], rng: random.Random) -> dict[str, Any]:
    """One tweet from each of `authors` through the whole pipeline (ingest.tweets, moderation,
    fan-out), as fast as the producer goes, waited for until the workers drained it: what a
    running worker holds of its authors (their moderation histories in memory, their follower lists,
    their profiles in Redis) when the steady rates meet them again. Not measured as delivery."""
    producer = EventProducer(settings, topology, **{"linger.ms": 20})
    order = rng.sample(authors, len(authors))
    t0 = time.monotonic()
    try:
        for i in range(0, len(order), 1000):
            await asyncio.gather(*(producer.send_event(tweet_created(author, tweet_id, f"warm tweet {tweet_id} #fanout"))
                                   for author, tweet_id in ((a, IDS.next_id()) for a in order[i:i + 1000])))
    finally:
        producer.close()
    await all_drained(settings, topology)
    took = time.monotonic() - t0
    # The flushes and compactions those writes leave would otherwise run during the first rate.
    return {"tweets": len(order), "seconds": round(took, 1), "tweets_per_s": round(len(order) / took, 1),
            "cassandra_settle": await settle_cassandra(settings)}


async def explain_misses(settings: Any, url: str, missed: list[tuple[str, int, int, int]]) -> list[dict[str, Any]]:
    """For each probe that gave up: the stored verdict, whether the author's recent set holds the
    tweet, and whether the reader sees it now (it was late, or it is lost)."""
    if not missed:
        return []
    cass = await CassandraStore.open(settings)
    cache = TimelineCache.from_url(settings.redis_url, 800)
    out = []
    try:
        stored = await cass.tweet_refs([t for _k, t, _r, _a in missed])
        async with aiohttp.ClientSession() as session:
            for kind, tweet_id, reader, author in missed:
                headers = {"Authorization": f"Bearer {mint_token(settings, reader)}"}
                async with session.get(url, params={"since_id": str(tweet_id - 1), "limit": "100"},
                                       headers=headers) as r:
                    body = await r.json()
                tweet = stored.get(tweet_id)
                out.append({"kind": kind, "tweet_id": str(tweet_id), "reader": str(reader),
                            "stored_verdict": tweet.moderation if tweet else None,
                            "in_recent_set": await cache.redis.lpos(recent_key(author), str(tweet_id)) is not None,
                            "recent_set_built": bool(await cache.redis.exists(recent_key(author))),
                            "visible_now": any(t["id"] == tweet_id for t in body.get("data", [])),
                            "page_size_now": len(body.get("data", []))})
    finally:
        await cache.close()
        await cass.close()
    return out


def stage_split(settings: Any, seen: list[tuple[int, float, float]]) -> dict[str, Any]:
    """Where the delivery latency of the probed tweets went: until moderation forwarded the tweet
    (its record's timestamp on tweets.moderated) and from there until the API showed it."""
    forwarded: dict[int, float] = {}
    for msg in read_to_end(settings.kafka_bootstrap, settings.topic("tweets.moderated"), 60):
        doc = orjson.loads(msg.value())
        for inner in (doc["data"]["events"] if doc["type"] == forwarding.PACKED else [doc]):
            if inner["type"] == "tweet.created":
                forwarded[int(inner["data"]["tweet_id"])] = msg.timestamp()[1] / 1000
    until, after = [], []
    for tweet_id, visible_at, latency in seen:
        at = forwarded.get(tweet_id)
        if at is not None:
            produced_at = visible_at - latency
            until.append(max(0.0, at - produced_at))
            after.append(max(0.0, visible_at - at))
    return {"until_moderated": summary_ms(until) if until else None,
            "moderated_to_visible": summary_ms(after) if after else None}


async def measure(settings: Any, topology: Any, graph: dict[int, list[int]], active: list[int], celebs: list[int],
                  pushed_authors: list[int], args: argparse.Namespace, rng: random.Random,
                  results: dict[str, Any]) -> None:
    cache = TimelineCache.from_url(settings.redis_url, 800)
    active_set, celeb_set = set(active), set(celebs)
    try:
        # Warm-up, not measured: the first tweets after a start meet cold connections, prepared
        # statements and caches.
        progress(f"warm-up: {WARMUP_RATE} tweets/s for {WARMUP_S}s (not measured)")
        await drive(settings, topology, graph, active_set, celebs, pushed_authors, WARMUP_RATE, WARMUP_S, rng)
        if args.capacity:
            # Twice, with the same authors: the first backlog meets most of them for the first time
            # (their follower lists are read from Cassandra, as after a worker restart), the second
            # finds every list cached (as a running worker holds its active authors'). Before the
            # steady rates, so that every rate below meets the same warm worker.
            authors = [rng.choice(pushed_authors) for _ in range(args.capacity)]
            results["fanout_stage"] = {
                phase: await stage_capacity(settings, topology, cache, active, authors if phase == "cold"
                                            else rng.sample(authors, len(authors)), rng,
                                            results["ceilings"]["redis_zadd_per_s"], args, phase)
                for phase in ("cold", "warm")}

        if args.warm_authors:
            progress(f"warming the pipeline: one tweet from each of {len(pushed_authors):,} authors, drained (not measured)")
            results["warm_authors"] = await warm_authors(settings, topology, pushed_authors, rng)
            progress(f"warmed: {results['warm_authors']}")

        runs = [await steady_rate(settings, topology, cache, graph, active, active_set, celebs, pushed_authors,
                                  rate, args, rng) for rate in args.rate]
        sent = [pair for _row, run in runs for pair in run["sent"]]
        results["steady"] = [row for row, _run in runs]
        # The figures: those of the highest rate sustained (else the lowest rate tried).
        sustained = [(row, run) for row, run in runs if row["sustained"]]
        pick, picked_run = max(sustained or [min(runs, key=lambda r: r[0]["offered_tweets_per_s"])],
                               key=lambda r: r[0]["offered_tweets_per_s"])
        latencies = picked_run["latencies"]
        results["highest_sustained_tweets_per_s"] = pick["offered_tweets_per_s"] if sustained else None
        results["highest_within_1s_tweets_per_s"] = within_1s(results["steady"])
        results["fanout"] = pick["fanout"]
        results["delivery_ms"] = pick["delivery_ms"]
        results["delivery_split_ms"] = pick["delivery_split_ms"]
        results["delivery_misses"] = pick["delivery_misses"]

        # Capacity: a backlog produced as fast as the client goes, timed until the worker drains it.
        await all_drained(settings, topology)
        progress(f"burst: {args.burst:,} tweets at once, timing the drain")
        before = await timeline_entries(cache, active)
        producer = EventProducer(settings, topology)
        t_burst = time.monotonic()
        await asyncio.gather(*(producer.send_event(tweet_created(author, IDS.next_id(), "burst #fanout"))
                               for author in (rng.choice(pushed_authors) for _ in range(args.burst))))
        producer.close()
        drained = await lag_zero(settings) - t_burst
        burst_written = await timeline_entries(cache, active) - before
        results["burst"] = {"tweets": args.burst, "seconds_to_drain": round(drained, 2),
                            "tweets_per_s": round(args.burst / drained, 1),
                            "timeline_entries_written": burst_written,
                            "entries_per_s": round(burst_written / drained),
                            "share_of_zadd_ceiling": round(burst_written / drained / results["ceilings"]["redis_zadd_per_s"], 4)}

        # Every (celebrity tweet, active follower) pair: each follower's timeline read once (a
        # LPOS per pair was a million commands).
        celeb_tweets = [(a, t) for a, t in sent if a in celeb_set]
        wanted: dict[int, set[int]] = {}
        for author, tweet in celeb_tweets:
            for f in graph[author]:
                if f in active_set:
                    wanted.setdefault(f, set()).add(tweet)
        checked = sum(map(len, wanted.values()))
        found = 0
        readers = list(wanted)
        for i in range(0, len(readers), CHUNK):
            pipe = cache.redis.pipeline(transaction=False)
            for f in readers[i:i + CHUNK]:
                pipe.lrange(timeline_key(f), 0, -1)
            for f, members in zip(readers[i:i + CHUNK], await pipe.execute()):
                found += len(wanted[f] & {int(m) for m in members if m.isdigit()})
        results["celebrity"] = {"celebrity_tweets": len(celeb_tweets), "follower_timelines_checked": checked,
                                "follower_timelines_containing_them": found}

        sample = active[:300]
        pipe = cache.redis.pipeline(transaction=False)
        for r in sample:
            pipe.memory_usage(timeline_key(r))
        used = sum(n or 0 for n in await pipe.execute())
        entries = await timeline_entries(cache, sample)
        results["redis"] = {"bytes_per_entry": round(used / entries, 1) if entries else None,
                            "sampled_entries": entries}
    finally:
        await cache.close()

    tokens = [mint_token(settings, r, ttl_s=3600) for r in active[:500]]
    url = f"http://{settings.api_host}:{settings.api_port}/v1/timelines/home"
    open_loop(url, 100, len(tokens) // 100 + 1, tokens=tokens)  # warm-up: every reader once (caches, rebuilds)
    results["reads"] = read_rates(args, url, tokens, results["ceilings"]["bare_aiohttp_requests_per_s"],
                                  settings.api_processes)
    if args.compare_api_processes:
        # The same reads against another number of API processes, in this run (same host speed).
        for n in args.compare_api_processes:
            progress(f"restarting the API with {n} process(es)")
            args.api_pid = args.restart_api(n)
            open_loop(url, 100, len(tokens) // 100 + 1, tokens=tokens)
            results.setdefault("reads_by_api_processes", {})[str(n)] = read_rates(
                args, url, tokens, results["ceilings"]["bare_aiohttp_requests_per_s"], n)
    plot(latencies)


# A rate is sustained when the pipeline is no more than this far behind when the last tweet is sent:
# the worker's lag on both topics reaches zero within it (a backlog that grew over the run does not).
SUSTAINED_DRAIN_S = 2.0
# ... and the driver sent at least this share of the rate asked for, over the run ...
OFFERED_SHARE = 0.97
# ... and delivery latency did not grow over the run by more than this (the probes' least-squares
# slope against send time): a pipeline at 98% of the offered rate falls behind by 20 ms each second.
# Runs at 500 and 700/s measured -5.6 to +7.8 ms per s (one at 700/s 18.1); 900 tweets/s beyond the
# capacity 98 and 117 (2026-12-07).
SUSTAINED_SLOPE_MS_PER_S = 20.0
WARMUP_RATE, WARMUP_S = 20, 3
# How often the steady driver wakes to send the tweets that are due, and polls for acks.
SEND_TICK_S = 0.01


def flat(trend: dict[str, Any] | None) -> bool:
    """Latency did not grow over the run (or too few probes to tell)."""
    return trend is None or trend["slope_ms_per_s"] <= SUSTAINED_SLOPE_MS_PER_S


async def all_drained(settings: Any, topology: Any) -> float:
    """Wait until the workers have caught up on every topic they consume; how long that took."""
    t0 = time.monotonic()
    await lag_zero(settings, topics=tuple(sorted({a.consumes for a in topology.agents.values()})))
    return time.monotonic() - t0


async def steady_rate(settings: Any, topology: Any, cache: TimelineCache, graph: dict[int, list[int]],
                      active: list[int], active_set: set[int], celebs: list[int], pushed_authors: list[int],
                      rate: int, args: argparse.Namespace, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    """Tweets at a steady rate for --duration, delivery probed through the API: fan-out figures,
    delivery latency (and its split at moderation), and whether the pipeline kept up."""
    # What the stage before left (the fan-out stage's hashtags for trending, a previous rate's)
    # is drained first: the workers would do it on the cores this rate needs.
    quiet_s = await all_drained(settings, topology)
    # The host's speed moves within a run (redis-benchmark's ZADD 0.36-1.5 million/s over a day):
    # the same ceiling again, here, with the pipeline idle, is each rate's own baseline.
    zadd_now = await asyncio.to_thread(redis_zadd_ceiling, args.redis_port)
    before = await timeline_entries(cache, active)
    progress(f"producing {rate} tweets/s for {args.duration}s, probing delivery through the API")
    worker_cpu, busy, t0 = workers_cpu_seconds(args), machine_cpu_seconds(), time.monotonic()
    stolen, procs = machine_steal_seconds(), process_cpu_seconds()
    ops, gc_log = await cassandra_ops(settings), GcLog(args.cassandra_gc_log)
    spy = profile(args, args.worker_pid, f"worker-{rate}", args.duration)
    run = await drive(settings, topology, graph, active_set, celebs, pushed_authors, rate, args.duration, rng,
                      args.probe_poll_share)
    t_done = run["t_done"]
    steady_s = t_done - t0
    worker_cores = (workers_cpu_seconds(args) - worker_cpu) / steady_s
    machine_cores = (machine_cpu_seconds() - busy) / steady_s
    stolen_cores = (machine_steal_seconds() - stolen) / steady_s
    # Who else was busy (the JVMs' own work, a compaction, the probes): the machine's share above.
    busiest_cores = busiest(procs, process_cpu_seconds(), steady_s)
    cassandra_per_1000 = per_thousand(ops, await cassandra_ops(settings), len(run["sent"]))
    if spy is not None:
        spy.wait(timeout=60)
    written = await timeline_entries(cache, active) - before
    fanout_s = t_done - run["t_start"]
    behind_s = t_done - run["t_sent"]
    # What the driver really sent: a rate it could not offer is not a rate the pipeline sustained.
    sent_rate = len(run["sent"]) / max(run["t_sent"] - run["t_start"], 1e-9)
    # Did latency grow over the run (a backlog building, which the drain check alone can let through)?
    trend = latency_trend([(visible_at - latency, latency) for _id, visible_at, latency in run["seen"]])
    row = {
        "offered_tweets_per_s": rate, "sent_tweets_per_s": round(sent_rate, 1),
        "seconds_behind_at_the_end": round(behind_s, 2), "waited_for_earlier_work_s": round(quiet_s, 1),
        "sustained": behind_s <= SUSTAINED_DRAIN_S and sent_rate >= OFFERED_SHARE * rate and flat(trend),
        "fanout": {
            "tweets": len(run["sent"]), "offered_tweets_per_s": rate,
            "timeline_entries_written": written, "seconds_to_drain": round(fanout_s, 2),
            "entries_per_s": round(written / fanout_s),
            "share_of_zadd_ceiling": round(written / fanout_s / args.zadd_ceiling, 3),
            "zadd_ceiling_before_this_rate_per_s": round(zadd_now),
            # How close the worker is to its one core at this rate (what bounds delivery latency).
            "worker_busy_cores": round(worker_cores, 2), "machine_busy_cores": round(machine_cores, 2),
            # Of those, the time the host ran others instead (a noisy neighbour, not this pipeline).
            "machine_stolen_cores": round(stolen_cores, 2),
            "worker_cpu_ms_per_tweet": round(worker_cores * steady_s * 1000 / len(run["sent"]), 3),
            "busiest_processes_cores": busiest_cores,
            # Requests Cassandra served per 1,000 tweets (by table), and its compactions and flushes.
            "cassandra_per_1000_tweets": cassandra_per_1000,
            # Cassandra's collection pauses meanwhile (its GC log): every request waits them out.
            "cassandra_gc_pauses": gc_log.pauses(),
        },
        "delivery_ms": {k: summary_ms(v) if v else None for k, v in run["latencies"].items()},
        "delivery_split_ms": stage_split(settings, run["seen"]),
        "delivery_trend": trend,
        # Every probe as (sent at, epoch s; latency, ms): to line a slow spell up with what else ran then.
        "probes": [[round(visible_at - latency, 3), round(latency * 1000, 1)] for _id, visible_at, latency in run["seen"]],
        "delivery_misses": run["misses"],
        "missed_probes": run["missed"],
        # What the probes cost the API (requests per second of the run), and how late a probe's
        # latency may be: the time since its poll before (--probe-poll-share).
        "probe_requests_per_s": round(run["polls"] / steady_s, 1),
        "probe_late_by_ms": summary_ms(run["late"]) if run["late"] else None,
    }
    return row, run


async def stage_capacity(settings: Any, topology: Any, cache: TimelineCache, active: list[int],
                         authors: list[int], rng: random.Random, zadd_ceiling: float,
                         args: argparse.Namespace, phase: str) -> dict[str, Any]:
    """The fan-out stage alone: a backlog of tweets stored and placed on tweets.moderated as the
    moderation agent does (allowed; packed per partition, batch by batch of batch_max), timed until
    the last entry landed: a sample of the active timelines is watched, and the drain ends when it
    last grew (the worker's lag reaching zero, also reported, waits for its next offset commit,
    up to a second later). The burst above measures the whole pipeline, whose slowest stage is
    moderation."""
    n = len(authors)
    progress(f"fan-out stage: {n:,} tweets straight onto tweets.moderated, timing the drain")
    # The active timelines emptied first (still built, as a read leaves them): a backlog larger
    # than the cap would otherwise trim what it wrote and hide it from the count below.
    for i in range(0, len(active), CHUNK):
        pipe = cache.redis.pipeline(transaction=False)
        for r in active[i:i + CHUNK]:
            pipe.ltrim(timeline_key(r), 0, 0)
            pipe.lset(timeline_key(r), 0, SENTINEL)
        await pipe.execute(raise_on_error=False)  # LSET on a timeline gone meanwhile: nothing to empty
    before = await timeline_entries(cache, active)
    producer = EventProducer(settings, topology, **{"linger.ms": 20})
    topic = settings.topic("tweets.moderated")
    events = [tweet_created(author, IDS.next_id(), "capacity #fanout") for author in authors]
    # Stored first, as moderation stores a tweet before forwarding it: readers hydrate them later.
    cass = await CassandraStore.open(settings)
    hot = HotCache(cache.redis)
    try:
        tweets = [Tweet.from_event(e) for e in events]
        for i in range(0, n, 5000):
            await cass.save_tweets(tweets[i:i + 5000])
            await hot.put_tweets(tweets[i:i + 5000])
    finally:
        await cass.close()
    # Packed before the CPU counts begin: the bench's own work, not the stage's.
    records = [r for i in range(0, n, topology.tunables.batch_max)
               for r in forwarding.pack(events[i:i + topology.tunables.batch_max], topology.topics["tweets.moderated"].partitions)]
    worker_pid = args.worker_pid
    stats0, cpu0 = await cache.redis.info("commandstats"), workers_cpu_seconds(args)
    busy0, stolen0, procs0 = machine_cpu_seconds(), machine_steal_seconds(), process_cpu_seconds()
    redis_cpu0, misses0 = redis_cpu_seconds(await cache.redis.info("cpu")), (await cache.redis.info("stats"))["keyspace_misses"]
    # The drain's first seconds (its length is not known in advance).
    spy = profile(args, worker_pid, f"worker-stage-{phase}", CAPACITY_PROFILE_S)
    watched = rng.sample(active, min(len(active), GROWTH_SAMPLE))
    growth: list[tuple[float, int]] = []
    stop = asyncio.Event()

    async def watch() -> None:
        keys = [timeline_key(r) for r in watched]
        while not stop.is_set():
            growth.append((time.monotonic(), sum(await cache.redis.eval(_SUM_LLEN, len(keys), *keys))))
            await asyncio.sleep(GROWTH_POLL_S)

    watcher = asyncio.create_task(watch())
    t0 = time.monotonic()
    for i in range(0, len(records), 1000):
        await asyncio.gather(*(producer.send(topic, partition_key(r), encode(r), partition=explicit_partition(r))
                               for r in records[i:i + 1000]))
    produced_s = time.monotonic() - t0
    producer.close()
    lag = Lag(settings, "tweets.moderated")
    try:
        lag_zero_s = await lag.zero() - t0
    finally:
        lag.close()
        stop.set()
        await watcher
    final = growth[-1][1]
    drained = next(t for t, total in growth if total == final) - t0 if final > growth[0][1] else lag_zero_s
    worker_cpu_s = workers_cpu_seconds(args) - cpu0
    # The machine over the same span (to the lag's zero: it ends after the last entry).
    machine_cores = (machine_cpu_seconds() - busy0) / lag_zero_s
    stolen_cores = (machine_steal_seconds() - stolen0) / lag_zero_s
    busiest_cores = busiest(procs0, process_cpu_seconds(), lag_zero_s)
    if spy is not None:
        spy.wait()
    stats1 = await cache.redis.info("commandstats")
    misses = (await cache.redis.info("stats"))["keyspace_misses"] - misses0
    # Every command Redis ran meanwhile (those inside scripts too), per 1,000 tweets: what a batch
    # asks of Redis besides its appends (the last-read lookup, the caches' reads and fills).
    commands = {name.removeprefix("cmdstat_"): round((st["calls"] - stats0.get(name, {}).get("calls", 0)) * 1000 / n, 1)
                for name, st in stats1.items() if st["calls"] > stats0.get(name, {}).get("calls", 0)}
    written = await timeline_entries(cache, active) - before
    # Where the time goes: Redis's own time in the fan-out script, and the worker's CPU, per entry.
    script_us = stats1["cmdstat_evalsha"]["usec"] - stats0["cmdstat_evalsha"]["usec"]
    # Redis counts the commands a script runs too: what the script's time is made of.
    inside = {name.removeprefix("cmdstat_"): {"calls": st["calls"] - stats0.get(name, {}).get("calls", 0),
                                              "us": st["usec"] - stats0.get(name, {}).get("usec", 0)}
              for name, st in stats1.items() if name in ("cmdstat_rpushx", "cmdstat_ltrim")}
    redis_cpu_s = redis_cpu_seconds(await cache.redis.info("cpu")) - redis_cpu0
    fullest = max(await cache.redis.eval(
        "local m = 0 for _, k in ipairs(KEYS) do m = math.max(m, redis.call('LLEN', k)) end return m",
        len(active), *[timeline_key(r) for r in active]), 0)
    return {"tweets": n, "records": len(records), "produce_s": round(produced_s, 2), "seconds_to_drain": round(drained, 2),
            "seconds_to_lag_zero": round(lag_zero_s, 2),
            "tweets_per_s": round(n / drained), "timeline_entries_written": written,
            "entries_per_tweet": round(written / n, 1), "entries_per_s": round(written / drained),
            "share_of_zadd_ceiling": round(written / drained / zadd_ceiling, 4),
            "share_of_many_keys_zadd_ceiling": round(written / drained / args.zadd_many_keys_ceiling, 4),
            # Entries pushed out by the cap would not show in the count above.
            "fullest_timeline": int(fullest), "timeline_cap": 800,
            # All of Redis's CPU (scripts, the last-read lookups, the protocol), then its scripts'.
            "redis_cpu_us_per_entry": round(redis_cpu_s * 1e6 / written, 2) if written else None,
            "redis_cpu_busy_share": round(redis_cpu_s / drained, 3),
            "redis_script_us_per_entry": round(script_us / written, 2) if written else None,
            "redis_script_busy_share": round(script_us / 1e6 / drained, 3),
            "redis_commands_in_script_per_entry": {c: {"calls": round(v["calls"] / written, 2),
                                                       "us": round(v["us"] / written, 2)}
                                                   for c, v in inside.items()} if written else None,
            "worker_cpu_us_per_entry": round(worker_cpu_s * 1e6 / written, 1) if written else None,
            "worker_cpu_cores": round(worker_cpu_s / drained, 3),
            "machine_busy_cores": round(machine_cores, 2), "machine_stolen_cores": round(stolen_cores, 2),
            "busiest_processes_cores": busiest_cores,
            "redis_commands_per_1k_tweets": dict(sorted(commands.items(), key=lambda kv: -kv[1])),
            # Keys read and not found (cache misses: the user cache's fills follow them).
            "redis_keyspace_misses_per_1k_tweets": round(misses * 1000 / n, 1),
            # If Redis ran nothing but these scripts, back to back: the best this layout can do.
            "redis_bound_share_of_zadd_ceiling": round(1e6 / (script_us / written) / zadd_ceiling, 3)
            if written and script_us else None,
            # If Redis ran nothing but the appends themselves (RPUSHX into these lists).
            "redis_append_bound_share_of_zadd_ceiling": round(1e6 / (inside["rpushx"]["us"] / written) / zadd_ceiling, 3)
            if written and inside.get("rpushx", {}).get("us") else None}


def workers_cpu_seconds(args: argparse.Namespace) -> float:
    """CPU time of every worker process (--workers) and their children so far."""
    return sum(tree_cpu_seconds(pid) for pid in args.worker_pids)


def redis_cpu_seconds(info: dict[str, Any]) -> float:
    """Redis's main process CPU time so far (INFO cpu)."""
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def redis_commands(port: int) -> dict[str, int]:
    """Commands Redis has run, by name (INFO commandstats)."""
    out = subprocess.run(["redis-cli", "-p", str(port), "info", "commandstats"], capture_output=True, text=True,
                         check=True).stdout
    return {line.split(":")[0].removeprefix("cmdstat_"): int(line.split("calls=")[1].split(",")[0])
            for line in out.splitlines() if line.startswith("cmdstat_")}


CAPACITY_PROFILE_S = 5
# Active timelines watched for the end of a stage drain, and how often (a script of one LLEN each).
GROWTH_SAMPLE = 300
GROWTH_POLL_S = 0.02
_SUM_LLEN = "local out = {} for i, k in ipairs(KEYS) do out[i] = redis.call('LLEN', k) end return out"


def profile(args: argparse.Namespace, pid: int, name: str, seconds: int) -> subprocess.Popen[bytes] | None:
    """With --profile DIR: py-spy samples a process and its children for `seconds`, as collapsed
    stacks (DIR/NAME.txt; flamegraph.pl or speedscope read them). It costs CPU of its own: figures
    from a profiled run are not comparable with others."""
    if not args.profile:
        return None
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy: pip install -e '.[bench]'")
    Path(args.profile).mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([spy, "record", "--subprocesses", "--format", "raw", "--rate", "200", "--nonblocking",
                             "-d", str(seconds), "-p", str(pid),
                             "-o", str(Path(args.profile) / f"{name}.txt")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def read_rates(args: argparse.Namespace, url: str, tokens: list[str], ceiling: float,
               processes: int) -> list[dict[str, Any]]:
    out = []
    for rate in args.read_rates:
        progress(f"home-timeline reads: {rate}/s for {args.read_duration}s, after {args.read_warmup}s at that rate "
                 "on the same connections (not counted)")
        at: dict[str, Any] = {}

        def counting() -> None:
            # What the counted requests cost, from about when they begin.
            at.update(api_cpu=tree_cpu_seconds(args.api_pid), commands=redis_commands(args.redis_port),
                      busy=machine_cpu_seconds(), procs=process_cpu_seconds(), stolen=machine_steal_seconds(),
                      spy=profile(args, args.api_pid, f"reads-{rate}", args.read_duration), t0=time.monotonic())

        # Steady state, not the API's first seconds at the rate: in one run (1,000/s, 15 s) the
        # requests due in the first 1.5 s had p50 10 ms where the rest had 2 ms (each process's
        # local caches and decoded viewers filling, the load generator's connections opening). A
        # warm-up run of its own did not help the connections: they closed with its generator.
        reads = open_loop(url, rate, args.read_duration, tokens=tokens, warmup_s=args.read_warmup, counting=counting)
        seconds = time.monotonic() - at["t0"]
        if at["spy"] is not None:
            at["spy"].wait(timeout=60)
        done = reads["completed_per_s"] * seconds  # requests answered in the window measured
        reads["api_cpu_ms_per_read"] = round((tree_cpu_seconds(args.api_pid) - at["api_cpu"]) * 1000 / done, 3)
        # How busy both cores were (the load generator, Redis, the JVMs and the worker share them).
        reads["machine_busy_cores"] = round((machine_cpu_seconds() - at["busy"]) / seconds, 2)
        reads["machine_stolen_cores"] = round((machine_steal_seconds() - at["stolen"]) / seconds, 2)
        reads["busiest_processes_cores"] = busiest(at["procs"], process_cpu_seconds(), seconds)
        # Host-independent: what each read asks of Redis (the API's CPU goes mostly to round trips).
        after, before = redis_commands(args.redis_port), at["commands"]
        reads["redis_commands_per_read"] = {c: round((n - before.get(c, 0)) / done, 2)
                                            for c, n in sorted(after.items()) if n - before.get(c, 0) >= done / 100}
        reads["share_of_bare_aiohttp"] = round(reads["completed_per_s"] / ceiling, 3)
        reads["floor"] = latency_floor(args, rate, processes)
        reads["p99_over_floor"] = round(reads["latency_ms"]["p99"] / reads["floor"]["latency_ms"]["p99"], 2)
        out.append(reads)
    return out


def latency_floor(args: argparse.Namespace, rate: int, processes: int) -> dict[str, Any]:
    """The same load, from the same generator, on a bare aiohttp endpoint with as many processes
    as the API, right after the API's run: what this machine, as busy as it is now, gives any
    aiohttp server at this rate (the home timeline's latency is compared with it)."""
    progress(f"  the floor: a bare aiohttp endpoint ({processes} process(es)), {rate}/s for {args.read_duration}s")
    with bare_aiohttp(processes) as url:
        busy, stolen, t0 = machine_cpu_seconds(), machine_steal_seconds(), time.monotonic()
        floor = open_loop(url, rate, args.read_duration, warmup_s=args.read_warmup)
        seconds = time.monotonic() - t0
    return {"processes": processes, "latency_ms": floor["latency_ms"], "completed_per_s": floor["completed_per_s"],
            # the warm-up included: both cores' use while the generator ran
            "machine_busy_cores": round((machine_cpu_seconds() - busy) / seconds, 2),
            "machine_stolen_cores": round((machine_steal_seconds() - stolen) / seconds, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--mean-followers", type=float, default=30)
    p.add_argument("--middle", type=int, default=3, help="accounts in the middle band")
    p.add_argument("--celebrities", type=int, default=2)
    p.add_argument("--push-all-below", type=int, default=1_000)
    p.add_argument("--push-active-below", type=int, default=4_000)
    p.add_argument("--active-share", type=float, default=0.3, help="readers with a built, active timeline")
    p.add_argument("--rate", type=lambda v: [int(x) for x in v.split(",") if x], default=[200],
                   help="tweets per second, comma-separated: each a steady run of --duration (a sweep "
                        "reports the highest rate sustained)")
    p.add_argument("--duration", type=int, default=30)
    p.add_argument("--read-rates", type=lambda v: [int(x) for x in v.split(",") if x], default=[250, 500, 1000],
                   help="home-timeline read rates, comma-separated (each an open-loop run)")
    p.add_argument("--read-duration", type=int, default=15)
    p.add_argument("--read-warmup", type=int, default=5,
                   help="seconds of reads at each read rate, on the same connections, before the counted ones "
                        "(reported, not counted)")
    p.add_argument("--burst", type=int, default=3000, help="tweets produced at once to measure capacity")
    p.add_argument("--capacity", type=int, default=40_000,
                   help="tweets placed on tweets.moderated to time the fan-out stage alone (0: skip)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--api-processes", type=int, default=None,
                   help="API server processes (STARLING_API_PROCESSES; default: the settings' default)")
    p.add_argument("--workers", type=int, default=1, help="worker processes in the consumer group")
    p.add_argument("--compare-api-processes", type=lambda v: [int(x) for x in v.split(",")], default=[],
                   help="then repeat the reads with the API restarted with each of these process counts")
    p.add_argument("--batches-in-flight", type=lambda v: [int(x) for x in v.split(",")], default=None,
                   help="override topology.yaml's batches_in_flight: N for moderation and fanout, or M,F "
                        "(1: one batch at a time)")
    p.add_argument("--batch-max-bytes", type=int, default=None,
                   help="override topology.yaml's batch_max_bytes (bytes of records per fan-out batch)")
    p.add_argument("--warm-authors", action="store_true",
                   help="before the steady rates, send one tweet from every author through the whole pipeline "
                        "(not measured): the rates then meet authors a running worker already knows, instead "
                        "of first sightings (Cassandra reads of their histories, follower lists, profiles)")
    p.add_argument("--keep-graph", action="store_true",
                   help="keep the loaded graph's keyspace after the run (its users, follows and active readers "
                        "in .state/bench/fanout/kept-graph-*.pickle), and reuse it if a run with the same graph "
                        "arguments kept one: its other tables are emptied first. Saves the load (7-22 min at "
                        "100,000 users); drop it with `DROP KEYSPACE` and the file")
    p.add_argument("--probe-poll-share", type=float, default=0.05,
                   help="a delivery probe polls again after this share of the time it has waited, within "
                        "20-250 ms (0: every 20 ms, as the probes polled before this option); a latency it "
                        "reports may be late by that wait and a request's time (probe_late_by_ms)")
    p.add_argument("--profile", metavar="DIR", default=None,
                   help="sample with py-spy (collapsed stacks in DIR): the API during each read run, the worker "
                        "during each steady rate and the first seconds of each fan-out stage drain")
    args = p.parse_args(argv)
    if not args.rate:  # the figures the issue asks for are those of a steady rate
        p.error("--rate needs at least one rate")
    if shutil.which("wrk") is None:
        raise SystemExit("bench.fanout measures a bare aiohttp endpoint with wrk: apt-get install wrk")
    rng = random.Random(args.seed)

    patch = {**ROOMY, "tunables.fanout": {"push_all_below": args.push_all_below,
                                          "push_active_below": args.push_active_below,
                                          "activity_window_s": 604800},
             # This benchmark measures delivery: its authors post far faster than any person, which
             # moderation's burst signal would rightly hold back (bench/moderation_pipeline.py
             # measures moderation in the pipeline).
             "tunables.moderation.burst_window_s": 1, "tunables.moderation.burst_at": 200,
             "tunables.moderation.history_max": 200}
    if args.batch_max_bytes is not None:
        patch["tunables.batch_max_bytes"] = args.batch_max_bytes
    if args.batches_in_flight is not None:
        counts = args.batches_in_flight * 2 if len(args.batches_in_flight) == 1 else args.batches_in_flight
        patch |= {f"agents.{agent}.batches_in_flight": n for agent, n in zip(("moderation", "fanout"), counts)}
    # The stack's own state (not the benchmark's namespace): where Cassandra writes its GC log.
    args.cassandra_gc_log = StackConfig.from_settings(Settings.from_env(), os.environ).log("cassandra-gc")
    settings, env = namespace("fanout", patch)
    kept_file = kept_graph_file(settings, args) if args.keep_graph else None
    kept = reuse_kept_graph(settings, kept_file) if kept_file is not None else None
    if kept is not None:
        progress(f"reusing the graph kept in keyspace {kept['keyspace']} ({kept_file.name})")
        env["STARLING_KEYSPACE"] = kept["keyspace"]
        settings = dataclasses.replace(settings, keyspace=kept["keyspace"])
    if args.api_processes is not None:
        env["STARLING_API_PROCESSES"] = str(args.api_processes)
        settings = dataclasses.replace(settings, api_processes=args.api_processes)
    topology = load_topology(settings.topology_path)
    policy = topology.tunables.fanout
    provision.create_topics(settings)
    provision.apply_cql_schema(settings)
    if kept is not None:
        users, graph, active, load_s = kept["users"], kept["graph"], kept["active"], kept["load_s"]
        n_edges = sum(map(len, graph.values()))
        rng.setstate(kept["rng_state"])  # the rest of the run draws what a fresh run would
    else:
        users = [IDS.next_id() for _ in range(args.users)]
        graph = generate_graph(users, args.mean_followers, args.middle, args.celebrities, args.push_all_below,
                               args.push_active_below, rng)
        active = rng.sample(users, int(len(users) * args.active_share))
        progress(f"loading {len(users):,} users and their follows into Cassandra")
        t = time.monotonic()
        n_edges = asyncio.run(load(settings, users, graph, policy))
        load_s = time.monotonic() - t
        if kept_file is not None:
            kept_file.write_bytes(pickle.dumps({"keyspace": settings.keyspace, "users": users, "graph": graph,
                                                "active": active, "load_s": load_s, "rng_state": rng.getstate()},
                                               protocol=pickle.HIGHEST_PROTOCOL))
    asyncio.run(load_redis(settings, graph, active, policy))
    progress("waiting for Cassandra's compactions and flushes after the load")
    settled = asyncio.run(settle_cassandra(settings))
    progress(f"  {settled}")
    results: dict[str, Any] = {"graph": {
        "users": len(users), "follow_edges": n_edges, "mean_followers": round(n_edges / len(users), 1),
        "max_followers": max(len(f) for f in graph.values()), "active_readers": len(active),
        "bands": {"push_all_below": args.push_all_below, "push_active_below": args.push_active_below},
        "load_s": round(load_s, 1), "reused_from_an_earlier_run": kept is not None,
        "cassandra_settle": settled}, "api_processes": settings.api_processes,
        "workers": args.workers, "probe_poll_share": args.probe_poll_share,
        "batches_in_flight": {a: topology.agents[a].batches_in_flight for a in ("moderation", "fanout")}}
    celebs = [a for a, fs in graph.items() if policy.is_pulled(len(fs))]
    pushed_authors = [a for a in users if a not in set(celebs) and graph[a]]

    apps = local.apps(settings, env)
    worker = next(a for a in apps if a.name == "worker")
    # Every worker is ready only once the group is Stable with all of them: the stages must not
    # begin while a late joiner rebalances the group.
    whole_group = dataclasses.replace(
        worker, probe=lambda: consumer_group(settings.kafka_bootstrap, settings.app_id, args.workers))
    apps = [whole_group if a is worker else a for a in apps]
    worker = whole_group
    apps += [dataclasses.replace(worker, name=f"worker{i}") for i in range(2, args.workers + 1)]
    try:
        progress("ceilings: redis-benchmark pipelined ZADD (one key, then as many as the active timelines), "
                 "bare aiohttp endpoint (wrk)")
        results["ceilings"] = {"redis_zadd_per_s": redis_zadd_ceiling(settings.redis_port),
                               "redis_zadd_many_keys_per_s": redis_zadd_many_keys_ceiling(settings.redis_port,
                                                                                         len(active)),
                               "many_keys": len(active),
                               "bare_aiohttp_requests_per_s": bare_aiohttp_ceiling()}
        launcher.up(apps)
        args.api_pid = process.read_pid(next(a for a in apps if a.name == "api").pid_file)
        args.worker_pid = process.read_pid(worker.pid_file)
        args.worker_pids = [process.read_pid(a.pid_file) for a in apps if a.name.startswith("worker")]
        args.redis_port = settings.redis_port
        args.zadd_ceiling = results["ceilings"]["redis_zadd_per_s"]
        args.zadd_many_keys_ceiling = results["ceilings"]["redis_zadd_many_keys_per_s"]

        def restart_api(n: int) -> int:
            launcher.down([a for a in apps if a.name == "api"])
            api = next(a for a in local.apps(settings, {**env, "STARLING_API_PROCESSES": str(n)}) if a.name == "api")
            launcher.up([api])
            pid = process.read_pid(api.pid_file)
            assert pid is not None
            return pid

        args.restart_api = restart_api
        # On uvloop, as the worker and the API run: the driver shares the cores it measures, and its
        # probes' HTTP requests and the event loop were ~half of its CPU on asyncio's own loop.
        uvloop.run(measure(settings, topology, graph, active, celebs, pushed_authors, args, rng, results))
    finally:
        launcher.down(apps)
        provision.drop(settings, keyspace=kept_file is None)
    report(results)
    write_results("fanout", results)
    return 0


def plot(latencies: dict[str, list[float]]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        progress("matplotlib not installed (pip install -e '.[bench]'): no plot")
        return
    from bench.common import RESULTS

    fig, ax = plt.subplots(figsize=(7, 4))
    for kind, values in latencies.items():
        if values:
            xs = sorted(v * 1000 for v in values)
            ax.plot(xs, [(i + 1) / len(xs) for i in range(len(xs))], label=f"{kind} authors (n={len(xs)})")
    ax.set_xscale("log")
    ax.set_xlabel("produce -> visible through the API (ms)")
    ax.set_ylabel("share of tweets")
    ax.set_title("Home-timeline delivery latency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(RESULTS / "fanout_delivery.png", dpi=110)


def within_1s(steady: list[dict[str, Any]]) -> int | None:
    """The highest rate sustained whose delivery p99 was under 1 s for pushed and pulled authors
    alike (the issue's delivery goal): a rate can be sustained, the backlog drained in time, with
    a p99 above it."""
    ok = [row["offered_tweets_per_s"] for row in steady if row["sustained"]
          and all((row["delivery_ms"][kind] or {}).get("p99_ms", float("inf")) < 1000 for kind in ("pushed", "pulled")
                  if row["delivery_ms"].get(kind))]
    return max(ok) if ok else None


def split_line(row: dict[str, Any]) -> str:
    split = row.get("delivery_split_ms") or {}
    return ", ".join(f"{k.replace('_', ' ')} p50 {v['p50_ms']:.0f} p99 {v['p99_ms']:.0f} ms"
                     for k, v in split.items() if v) or "-"


def report(r: dict[str, Any]) -> None:
    g, c, f = r["graph"], r["ceilings"], r["fanout"]
    for row in r.get("steady", []):
        d = row["delivery_ms"]["pushed"] or {}
        print(f"steady {row['offered_tweets_per_s']} tweets/s: {'sustained' if row['sustained'] else 'NOT sustained'} "
              f"(sent {row.get('sent_tweets_per_s', '?')}/s; {row['seconds_behind_at_the_end']} s behind when the last "
              f"tweet was sent); delivery (pushed) "
              f"p50 {d.get('p50_ms')} ms, p99 {d.get('p99_ms')} ms; split at moderation {split_line(row)}; "
              f"earlier work drained first in {row.get('waited_for_earlier_work_s', '?')} s; "
              f"worker busy {row['fanout']['worker_busy_cores']} "
              f"cores, machine {row['fanout']['machine_busy_cores']} of 2 (stolen by the host "
              f"{row['fanout'].get('machine_stolen_cores', '?')}) {row['fanout'].get('busiest_processes_cores', {})}")
        if "zadd_ceiling_before_this_rate_per_s" in row["fanout"]:
            print(f"  redis-benchmark's ZADD just before this rate: {row['fanout']['zadd_ceiling_before_this_rate_per_s']:,}/s")
        print(f"  Cassandra per 1,000 tweets: {row['fanout'].get('cassandra_per_1000_tweets', {})}")
        print(f"  Cassandra's GC pauses meanwhile: {row['fanout'].get('cassandra_gc_pauses')}")
        if row.get("probe_late_by_ms"):
            print(f"  probes: {row['probe_requests_per_s']} requests/s to the API; a latency late by at most "
                  f"p50 {row['probe_late_by_ms']['p50_ms']} ms, max {row['probe_late_by_ms']['max_ms']} ms")
        if row.get("delivery_trend"):
            print(f"  delivery over the run: p50 by third {row['delivery_trend']['p50_ms_by_third']} ms, "
                  f"slope {row['delivery_trend']['slope_ms_per_s']} ms per s")
        for m in row.get("missed_probes", []):
            print(f"  missed probe ({m['kind']}): tweet {m['tweet_id']}, verdict {m['stored_verdict']}, in the author's "
                  f"recent set {m['in_recent_set']} (built {m['recent_set_built']}), visible to the reader after the run "
                  f"{m['visible_now']} ({m['page_size_now']} tweets on that page)")
    print(f"highest rate sustained: {r.get('highest_sustained_tweets_per_s')} tweets/s (the figures below are its run's); "
          f"the highest with delivery p99 under 1 s: {within_1s(r['steady']) if 'steady' in r else None} tweets/s")
    print(f"\ngraph: {g['users']:,} users, {g['follow_edges']:,} follows (mean {g['mean_followers']}, "
          f"max {g['max_followers']:,}), {g['active_readers']:,} active readers; loaded in {g['load_s']} s, then "
          f"Cassandra's compactions and flushes {g.get('cassandra_settle')}")
    print(f"ceilings: redis ZADD (pipelined) {c['redis_zadd_per_s']:,.0f}/s; the same into {c['many_keys']:,} keys "
          f"{c['redis_zadd_many_keys_per_s']:,.0f}/s; bare aiohttp {c['bare_aiohttp_requests_per_s']:,.0f} req/s")
    print(f"fan-out: {f['tweets']:,} tweets -> {f['timeline_entries_written']:,} entries in {f['seconds_to_drain']}s "
          f"= {f['entries_per_s']:,}/s ({f['share_of_zadd_ceiling']:.1%} of the ZADD ceiling); worker busy "
          f"{f.get('worker_busy_cores', '?')} cores ({f.get('worker_cpu_ms_per_tweet', '?')} ms CPU per tweet), "
          f"machine {f.get('machine_busy_cores', '?')} of 2")
    b = r["burst"]
    print(f"fan-out capacity (burst): {b['tweets']:,} tweets drained in {b['seconds_to_drain']}s = {b['tweets_per_s']}/s, "
          f"{b['entries_per_s']:,} entries/s ({b['share_of_zadd_ceiling']:.2%} of the ZADD ceiling)")
    for stage, d in r.get("delivery_split_ms", {}).items():
        if d:
            print(f"delivery, {stage.replace('_', ' ')}: p50 {d['p50_ms']} ms, p99 {d['p99_ms']} ms, n={d['n']}")
    for kind, d in r["delivery_ms"].items():
        if d:
            print(f"delivery ({kind}): p50 {d['p50_ms']} ms, p99 {d['p99_ms']} ms, max {d['max_ms']} ms, n={d['n']}, "
                  f"missed {r['delivery_misses'][kind]}")
    for phase, s in r.get("fanout_stage", {}).items():
        if phase not in ("cold", "warm"):
            continue
        print(f"fan-out stage alone ({phase}): {s['tweets']:,} tweets ({s.get('records', '?'):,} records) drained in "
              f"{s['seconds_to_drain']}s (lag zero at {s.get('seconds_to_lag_zero')}s) = {s['tweets_per_s']:,}/s, "
              f"{s['entries_per_s']:,} entries/s ({s['entries_per_tweet']} per tweet; {s['share_of_zadd_ceiling']:.2%} "
              f"of the ZADD ceiling, {s['share_of_many_keys_zadd_ceiling']:.2%} of ZADD into as many keys); fullest "
              f"timeline {s['fullest_timeline']} of {s['timeline_cap']}")
        print(f"  per entry: Redis CPU {s['redis_cpu_us_per_entry']} us (busy {s['redis_cpu_busy_share']:.0%}), "
              f"{s['redis_script_us_per_entry']} us of it in scripts (busy {s['redis_script_busy_share']:.0%}), "
              f"worker CPU {s['worker_cpu_us_per_entry']} us ({s['worker_cpu_cores']} cores, all workers); Redis alone "
              f"could write {s['redis_bound_share_of_zadd_ceiling']:.0%} of the ZADD ceiling this way, its appends "
              f"alone {s.get('redis_append_bound_share_of_zadd_ceiling') or 0:.0%}; machine {s['machine_busy_cores']} "
              f"of 2 cores busy (stolen by the host {s['machine_stolen_cores']})")
        print(f"  inside the script, per entry: {s.get('redis_commands_in_script_per_entry')}")
        if "busiest_processes_cores" in s:
            print(f"  processes (cores): {s['busiest_processes_cores']}")
            print(f"  Redis commands per 1,000 tweets: {s['redis_commands_per_1k_tweets']}; keys not found "
                  f"{s['redis_keyspace_misses_per_1k_tweets']}")
    cel = r["celebrity"]
    print(f"celebrity tweets: {cel['celebrity_tweets']} -> in {cel['follower_timelines_containing_them']} of "
          f"{cel['follower_timelines_checked']} follower timelines checked")
    print(f"redis: {r['redis']['bytes_per_entry']} bytes per timeline entry")
    for n, rows in [(r["api_processes"], r["reads"]), *((int(k), v) for k, v in r.get("reads_by_api_processes", {}).items())]:
        for rd in rows:
            w = rd.get("warmup")
            if w:
                print(f"reads warm-up ({n} API process{'es' if n > 1 else ''}, not counted): {w['seconds']}s at "
                      f"{rd['offered_per_s']}/s, p50 {w['latency_ms']['p50']} ms, p99 {w['latency_ms']['p99']} ms")
            print(f"reads ({n} API process{'es' if n > 1 else ''}): offered {rd['offered_per_s']}/s, "
                  f"done {rd['completed_per_s']}/s, p50 {rd['latency_ms']['p50']} ms, p90 {rd['latency_ms']['p90']} ms, "
                  f"p99 {rd['latency_ms']['p99']} ms, API CPU {rd['api_cpu_ms_per_read']} ms/read, machine busy "
                  f"{rd.get('machine_busy_cores', '?')} of 2 cores (stolen by the host {rd.get('machine_stolen_cores', '?')}) "
                  f"{rd.get('busiest_processes_cores', {})}; {rd['share_of_bare_aiohttp']:.1%} of a bare "
                  f"aiohttp endpoint (one process); Redis commands per read {rd['redis_commands_per_read']}")
            seconds = rd.get("per_second", [])
            if seconds:
                print(f"  each second's p99 (ms): {[s['p99_ms'] for s in seconds]}")
            fl = rd.get("floor")
            if fl:
                print(f"  floor, a bare aiohttp endpoint ({fl['processes']} process(es)) at the same rate: p50 "
                      f"{fl['latency_ms']['p50']} ms, p90 {fl['latency_ms']['p90']} ms, p99 {fl['latency_ms']['p99']} ms "
                      f"(machine busy {fl['machine_busy_cores']}, stolen {fl['machine_stolen_cores']}); the home "
                      f"timeline's p99 is {rd['p99_over_floor']}x the floor's")


if __name__ == "__main__":
    sys.exit(main())
