"""The cyclic garbage collector in Starling's long-running processes (the worker, each API server).

Both hold many long-lived objects (the worker: trending's trackers, moderation's histories,
follower lists; an API process: its local copies of tweets, users and counts, decoded viewers)
and produce little cyclic garbage: a request's objects die by reference counting. Python's
defaults suit the opposite. The first threshold (700) runs a collection for every 700 objects
that outlive their allocation, and a full collection scans every object alive, at ~0.5 us each on
these machines (a bare `gc.collect()` after importing the API: 41-46 ms for 80,000 objects).

So each process, once started:
- the worker collects less often (`tune`, GC_THRESHOLDS): fewer, larger young collections (an
  API process keeps the defaults: api/main.py says why);
- freezes what is alive then (`freeze_startup`): modules, the schema, the OpenAPI document, the
  clients. Full collections never scan those objects again. They are still freed by reference
  counting, only a cycle among them would never be (none is made after startup);
- logs each collection slower than SLOW_COLLECTION_MS, with the CPU time it took (`watch`): a
  process stalled that long delays every request or event it holds; the worker also logs, every
  REPORT_EVERY_S, the collections since its last report and their share of its CPU time (`take`).
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

log = logging.getLogger("starling.heap")

# First threshold 50,000 allocations: in the worker, seventy times fewer collections; the trending
# tracker's whole-life rate rose from 59,533 to 69,757 events/s with it (bench/trending_quality.py
# --throughput-only measures both in one run).
GC_THRESHOLDS = (50_000, 10, 10)
# A collection this long (CPU time of the collecting thread) is logged at WARNING.
SLOW_COLLECTION_MS = 20.0
# How often the worker logs what its collections cost since the last report.
REPORT_EVERY_S = 60.0


def tune() -> None:
    gc.set_threshold(*GC_THRESHOLDS)


_deliberate = False  # a collection asked for here: counted, not warned about


def freeze_startup() -> None:
    """Collect once, then move everything alive out of the collector's generations."""
    global _deliberate
    _deliberate = True
    try:
        gc.collect()
    finally:
        _deliberate = False
    gc.freeze()


class CollectionLog:
    """Times every collection (CPU time of the thread that runs it, so a host that takes the core
    away does not count) and keeps the totals per generation."""

    def __init__(self, slow_ms: float = SLOW_COLLECTION_MS) -> None:
        self.slow_ms = slow_ms
        self.count = [0, 0, 0]
        self.cpu_ms = [0.0, 0.0, 0.0]
        self.max_ms = [0.0, 0.0, 0.0]
        self._started = 0.0
        # Where the last `take` left off: the totals then, the longest since, the process's CPU then.
        self._taken_count = [0, 0, 0]
        self._taken_cpu_ms = [0.0, 0.0, 0.0]
        self._longest_since = [0.0, 0.0, 0.0]
        self._taken_process_s = time.process_time()

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.thread_time()
            return
        ms = (time.thread_time() - self._started) * 1000
        gen = info["generation"]
        self.count[gen] += 1
        self.cpu_ms[gen] += ms
        self.max_ms[gen] = max(self.max_ms[gen], ms)
        self._longest_since[gen] = max(self._longest_since[gen], ms)
        if ms >= self.slow_ms and not _deliberate:
            log.warning("gc: generation %d collection took %.1f ms of CPU (%d objects collected)",
                        gen, ms, info["collected"])

    def summary(self) -> dict[str, Any]:
        return _by_generation(self.count, self.cpu_ms, self.max_ms)

    def take(self) -> dict[str, Any]:
        """The collections since the last take (or the start), as `summary` gives them, and the
        share of the process's CPU time meanwhile (every thread's) that they took."""
        process_s = time.process_time()
        out = _by_generation([n - t for n, t in zip(self.count, self._taken_count)],
                             [c - t for c, t in zip(self.cpu_ms, self._taken_cpu_ms)], self._longest_since)
        spent_ms = sum(self.cpu_ms) - sum(self._taken_cpu_ms)
        process_ms = (process_s - self._taken_process_s) * 1000
        out["share_of_process_cpu"] = round(spent_ms / process_ms, 4) if process_ms > 0 else 0.0
        self._taken_count, self._taken_cpu_ms = list(self.count), list(self.cpu_ms)
        self._longest_since = [0.0, 0.0, 0.0]
        self._taken_process_s = process_s
        return out


def _by_generation(count: list[int], cpu_ms: list[float], max_ms: list[float]) -> dict[str, Any]:
    return {f"gen{g}": {"collections": count[g], "cpu_ms": round(cpu_ms[g], 1), "max_ms": round(max_ms[g], 1)}
            for g in range(3)}


def watch(slow_ms: float = SLOW_COLLECTION_MS) -> CollectionLog:
    """Install a CollectionLog for this process."""
    record = CollectionLog(slow_ms)
    gc.callbacks.append(record)
    return record
