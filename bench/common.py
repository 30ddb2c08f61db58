"""Shared by the benchmarks: a private namespace on the running local stack, figures, results files."""

from __future__ import annotations

import json
import os
import platform
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from pipeline.settings import Settings, project_root
from pipeline.topology import with_overrides

RESULTS = project_root() / "bench" / "results"
NODE_DIR = project_root() / "bench" / "node"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def namespace(name: str, topology_patch: dict[str, Any] | None = None) -> tuple[Settings, dict[str, str]]:
    """Settings and environment for a benchmark's own topics, keyspace, Redis db and state dir."""
    base = Settings.from_env()
    state = base.state_dir / "bench" / name
    state.mkdir(parents=True, exist_ok=True)
    # Each run has its own topics and keyspace, so the previous run's app logs only grow: start afresh.
    for log in (state / "logs").glob("*.log"):
        log.unlink()
    topology = with_overrides(yaml.safe_load(base.topology_path.read_text()), topology_patch or {})
    (state / "topology.yaml").write_text(yaml.safe_dump(topology))
    run = secrets.token_hex(3)
    host = base.redis_url.split("://", 1)[1].split("/", 1)[0]
    env = {
        **os.environ,
        "STARLING_TOPOLOGY": str(state / "topology.yaml"),
        "STARLING_TOPIC_PREFIX": f"bench-{name}-{run}.",
        "STARLING_KEYSPACE": f"bench_{name.replace('-', '_')}_{run}",
        "STARLING_APP_ID": f"starling-bench-{name}-{run}",
        "STARLING_REDIS_URL": f"redis://{host}/3",
        "STARLING_API_PORT": str(free_port()),
        "STARLING_STATE_DIR": str(state),
        "STARLING_JWT_SECRET": secrets.token_urlsafe(48),
    }
    settings = Settings.from_env(env)
    # Redis database 3 belongs to benchmarks: views left by an earlier run (a built celebrity
    # set, follower counts, timelines) would be read as this run's.
    import redis

    redis.Redis.from_url(settings.redis_url).flushdb()
    return settings, env


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary_ms(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {"p50_ms": round(percentile(ms, 50), 3), "p99_ms": round(percentile(ms, 99), 3),
            "max_ms": round(max(ms), 3), "mean_ms": round(statistics.fmean(ms), 3), "n": len(ms)}


def probe_interval(waited_s: float, share: float, least_s: float = 0.02, most_s: float = 0.25) -> float:
    """How long a delivery probe waits before polling again, having waited `waited_s` so far:
    `share` of that, within [least_s, most_s] (share 0: every least_s). The wait adds at most share
    of the latency (or least_s) to how late a probe may see its tweet, beside the time a request
    itself takes; and a late tweet costs few polls: with share 0.05, 25 polls to see a tweet after
    0.5 s (as every 20 ms), 39 after 1 s against 50, 53 after 2 s against 100, 92 after 10 s
    against 500. A pipeline falling behind is then not also read harder by its own probes (on the
    cores it runs on) the further behind it falls."""
    return min(most_s, max(least_s, share * waited_s))


def latency_trend(samples: list[tuple[float, float]]) -> dict[str, Any] | None:
    """Whether latency grew over a run at a steady rate: from (sent at, latency) pairs in seconds,
    the least-squares slope of latency against send time (ms of latency per s of the run) and the
    p50 of each third of the run. A rate the pipeline keeps up with has a flat trend; a backlog
    that grows shows as a slope of about (offered - capacity) / capacity, 1000 ms per s at twice
    the capacity. None with fewer than 6 samples."""
    if len(samples) < 6:
        return None
    ordered = sorted(samples)
    xs, ys = [t for t, _ in ordered], [lat * 1000 for _, lat in ordered]
    try:
        slope = statistics.linear_regression(xs, ys).slope
    except statistics.StatisticsError:  # every sample sent at (nearly) the same instant
        slope = 0.0
    third = len(ordered) // 3
    parts = [ys[:third], ys[third:len(ys) - third], ys[len(ys) - third:]]
    return {"slope_ms_per_s": round(slope, 1), "p50_ms_by_third": [round(percentile(p, 50), 1) for p in parts]}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its live descendants (an API supervisor and its servers)."""
    total = cpu_seconds(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += tree_cpu_seconds(int(child))
    return total


def _all_cores_ticks() -> list[int]:
    """/proc/stat's "cpu" line: user, nice, system, idle, iowait, irq, softirq, steal, ..."""
    return [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]


def machine_cpu_seconds() -> float:
    """Busy CPU time of the whole machine, all cores (/proc/stat: everything but idle and iowait)."""
    fields = _all_cores_ticks()
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def machine_steal_seconds() -> float:
    """CPU time the hypervisor gave to others while this machine's cores wanted it, all cores
    (/proc/stat "steal"): counted in machine_cpu_seconds as busy, done by nobody here."""
    return _all_cores_ticks()[7] / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds() -> dict[str, float]:
    """CPU time so far of every live process, by "pid name" (for what else shares the cores)."""
    out: dict[str, float] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        words = [w.decode(errors="replace") for w in cmd if w]
        label = next((w for w in reversed(words) if w in ("api", "worker") or "CassandraDaemon" in w
                      or w.endswith("openloop.mjs") or "kafka.Kafka" in w or "KafkaRaftServer" in w), name)
        fields = stat.rsplit(")", 1)[1].split()
        key = f"{d.name} {label.rsplit('.', 1)[-1]}"
        out[key] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        if name == "java":
            out[f"{key} JIT"] = compiler_ticks(_threads(d)) / os.sysconf("SC_CLK_TCK")
    return out


def _threads(proc: Path) -> list[tuple[str, int]]:
    """(name, CPU ticks) of each of a process's threads."""
    out = []
    for task in (proc / "task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out.append((comm, int(fields[11]) + int(fields[12])))
    return out


def compiler_ticks(threads: list[tuple[str, int]]) -> int:
    """CPU ticks of a JVM's JIT compiler threads ("C1 CompilerThre", "C2 CompilerThre": Linux keeps
    15 characters of a thread's name). A JVM compiles its hot code in its first tens of minutes
    under load: 0.10-0.15 cores of 2 at 400 tweets/s in bench/fanout.py minutes after `stack up`,
    ~0 an hour later (docs/ARCHITECTURE.md); a run's figures say how much of that it met."""
    return sum(ticks for comm, ticks in threads if comm.startswith(("C1 CompilerThre", "C2 CompilerThre")))


def busiest(before: dict[str, float], after: dict[str, float], seconds: float, n: int = 10) -> dict[str, float]:
    """The n processes that used the most CPU between two process_cpu_seconds(), in cores (a JVM's
    "pid name JIT" entry is part of its own, not beside it)."""
    used = {k: (v - before.get(k, 0.0)) / seconds for k, v in after.items()}
    return {k: round(v, 2) for k, v in sorted(used.items(), key=lambda kv: -kv[1])[:n] if v >= 0.01}


def calibration_us() -> float:
    """Microseconds for a fixed pure-Python workload (HMAC-SHA256 of 100 bytes plus a 200-step
    loop). This machine's speed varies with its host (2x seen within an hour), so every result
    carries it: compare runs by it, and trust ratios to same-run baselines over absolute figures."""
    import hashlib
    import hmac
    import timeit

    key, msg = b"k" * 32, b"m" * 100

    def work() -> None:
        hmac.new(key, msg, hashlib.sha256).digest()
        sum(i * i for i in range(200))

    return round(min(timeit.repeat(work, number=2000, repeat=5)) / 2000 * 1e6, 2)


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "calibration_us": calibration_us()}


def open_loop(url: str, rate: int, duration_s: float, method: str = "GET", headers: dict[str, str] | None = None,
              bodies: list[str] | None = None, tokens: list[str] | None = None, warmup_s: float = 0,
              counting: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run bench/node/openloop.mjs: fixed offered rate, latency from each request's due time.
    With `warmup_s`, the generator first runs that long at the rate on the same connections,
    uncounted (its figures under "warmup"); `counting` is called about when the counted requests
    begin (to start measuring what they cost). The result also has `per_second`: each second's
    p99 and its requests over 10 ms, in due order, to tell a steady tail from a few bad seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "latencies.json"
        cfg = {"url": url, "rate": rate, "duration_s": duration_s, "method": method, "headers": headers or {},
               "bodies": bodies, "tokens": tokens, "warmup_s": warmup_s, "dump": str(dump)}
        with subprocess.Popen(["node", str(NODE_DIR / "openloop.mjs"), json.dumps(cfg)], stdout=subprocess.PIPE,
                              text=True) as gen:
            if counting is not None:
                time.sleep(warmup_s + NODE_START_S)
                counting()
            stdout, _ = gen.communicate(timeout=(duration_s + warmup_s) * 3 + 60)
        if gen.returncode:
            raise RuntimeError(f"openloop.mjs exited with {gen.returncode}")
        result = dict(json.loads(stdout))
        result["per_second"] = per_second(json.loads(dump.read_text()), rate)
    return result


# openloop.mjs sends its first request about this long after it is started (Node starts in ~0.15 s,
# then waits 50 ms).
NODE_START_S = 0.2


def per_second(latencies_ms: list[float], rate: int, slow_ms: float = 10) -> list[dict[str, float]]:
    """Each second's p99 (ms) and how many of its requests took over `slow_ms`, from latencies
    in due order at a fixed rate."""
    out = []
    for start in range(0, len(latencies_ms), rate):
        second = sorted(latencies_ms[start:start + rate])
        out.append({"p99_ms": round(second[min(len(second) - 1, int(len(second) * 0.99))], 1),
                    f"over_{slow_ms:g}ms": sum(1 for v in second if v > slow_ms)})
    return out


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"benchmark": name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(), **data}
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"\nresults written to {path}", file=sys.stderr)
    return path


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Lag:
    """The benchmark worker's consumer lag on one topic, per partition (end offset - committed)."""

    def __init__(self, settings: Settings, topic_name: str, group: str | None = None) -> None:
        from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
        from confluent_kafka.admin import AdminClient

        self._tp = TopicPartition
        self.group = group or settings.app_id
        self.topic = settings.topic(topic_name)
        self.admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        self.probe = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"{self.group}-lag-probe"})
        self.parts = sorted(self.probe.list_topics(self.topic, timeout=10).topics[self.topic].partitions)
        self._request = [ConsumerGroupTopicPartitions(self.group, [TopicPartition(self.topic, p) for p in self.parts])]

    def now(self) -> dict[int, int]:
        committed = {tp.partition: max(tp.offset, 0)
                     for tp in self.admin.list_consumer_group_offsets(self._request)[self.group].result().topic_partitions}
        ends = {p: self.probe.get_watermark_offsets(self._tp(self.topic, p), timeout=10)[1] for p in self.parts}
        return {p: ends[p] - committed.get(p, 0) for p in self.parts}

    async def zero(self, timeout_s: float = 600) -> float:
        """When the lag reaches zero on every partition (time.monotonic())."""
        import asyncio

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            # The admin and watermark calls block: off the loop, where probes may be timing reads.
            if sum((await asyncio.to_thread(self.now)).values()) == 0:
                return time.monotonic()
            await asyncio.sleep(0.2)
        raise RuntimeError(f"the worker did not catch up on {self.topic} within {timeout_s}s")

    def close(self) -> None:
        self.probe.close()


async def produce_events(settings: Settings, events: list[Any], linger_ms: int = 20) -> None:
    """Produce a backlog and wait for every acknowledgement (5,000 in flight at a time)."""
    import asyncio

    from adapters.kafka import EventProducer
    from pipeline.topology import load_topology

    producer = EventProducer(settings, load_topology(settings.topology_path), **{"linger.ms": linger_ms})
    try:
        for i in range(0, len(events), 5000):
            await asyncio.gather(*(producer.send_event(e) for e in events[i:i + 5000]))
    finally:
        producer.close()


async def drain_span(settings: Settings, topic_name: str, group: str, started: float,
                     timeout_s: float = 900) -> dict[str, float]:
    """A fresh consumer group eating a backlog: when its first commit shows and when its lag is
    zero (time.monotonic()), polled every 50 ms. The measured span runs from the first commit, so
    the worker's start is left out; a backlog eaten between two polls counts from `started`."""
    import asyncio

    lag = Lag(settings, topic_name, group=group)
    try:
        total = sum(lag.now().values())  # nothing committed yet: the whole backlog
        first: tuple[float, int] | None = None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            left = sum(lag.now().values())
            t = time.monotonic()
            if first is None and 0 < left < total:
                first = (t, total - left)
            if left == 0:
                if first is None:
                    first = (started, 0)
                return {"records": total, "first_commit_s": round(first[0] - started, 2),
                        "seconds_incl_start": round(t - started, 2), "measured_records": total - first[1],
                        "measured_s": t - first[0]}
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{group} did not drain {topic_name} within {timeout_s}s")
    finally:
        lag.close()


def time_drain(settings: Settings, service: Any, topic_name: str, group: str) -> dict[str, float]:
    """Start `service` (a consumer in `group`), time it through the backlog on `topic_name`
    (drain_span), note its RSS at the end, and stop it."""
    import asyncio

    from stack import launcher

    started = time.monotonic()
    launcher.up([service])
    try:
        span = asyncio.run(drain_span(settings, topic_name, group, started))
        span["rss_mib_after"] = launcher.status([service])[0].rss_mib or 0.0
    finally:
        launcher.down([service])
    return span


def noop_service(settings: Settings, env: dict[str, str], base: Any) -> Any:
    """bench/noop_worker.py as a launcher service, beside the Starling worker `base`."""
    from stack import probes
    from stack.services import Service

    group = f"{settings.app_id}-noop"
    return Service(name="noop", cfg=base.cfg, ready_timeout_s=120, stop_grace_s=30, ports=(),
                   marker="-m bench.noop_worker", prepare=lambda: [sys.executable, "-m", "bench.noop_worker"],
                   env=env, probe=lambda: probes.consumer_group(settings.kafka_bootstrap, group))


_PAUSE = re.compile(r"\bPause\b.* ([0-9.]+)ms$")


def gc_pause_summary(text: str) -> dict[str, Any]:
    """The stop-the-world pauses in a JVM's unified GC log (-Xlog:gc lines such as `GC(12) Pause
    Young (Normal) (G1 Evacuation Pause) 310M->28M(1024M) 63.201ms`): how many, their total, the
    median and the longest, and how many took 100 ms or more."""
    pauses = sorted(float(m.group(1)) for line in text.splitlines() if (m := _PAUSE.search(line.strip())))
    if not pauses:
        return {"pauses": 0, "total_ms": 0.0, "p50_ms": None, "max_ms": None, "over_100ms": 0}
    return {"pauses": len(pauses), "total_ms": round(sum(pauses), 1), "p50_ms": round(pauses[len(pauses) // 2], 1),
            "max_ms": round(pauses[-1], 1), "over_100ms": sum(p >= 100 for p in pauses)}


class GcLog:
    """A JVM's GC log read from where it stood when this was made: the pauses in between. None if
    there is no log, or it was rotated meanwhile (the span is then not all in one file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else None

    def pauses(self) -> dict[str, Any] | None:
        if self.offset is None or not self.path.exists() or self.path.stat().st_size < self.offset:
            return None
        with self.path.open("rb") as f:
            f.seek(self.offset)
            return gc_pause_summary(f.read().decode(errors="replace"))
