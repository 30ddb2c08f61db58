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
  process stalled that long delays every request or event it holds.
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

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.thread_time()
            return
        ms = (time.thread_time() - self._started) * 1000
        gen = info["generation"]
        self.count[gen] += 1
        self.cpu_ms[gen] += ms
        self.max_ms[gen] = max(self.max_ms[gen], ms)
        if ms >= self.slow_ms and not _deliberate:
            log.warning("gc: generation %d collection took %.1f ms of CPU (%d objects collected)",
                        gen, ms, info["collected"])

    def summary(self) -> dict[str, Any]:
        return {f"gen{g}": {"collections": self.count[g], "cpu_ms": round(self.cpu_ms[g], 1),
                            "max_ms": round(self.max_ms[g], 1)} for g in range(3)}


def watch(slow_ms: float = SLOW_COLLECTION_MS) -> CollectionLog:
    """Install a CollectionLog for this process."""
    record = CollectionLog(slow_ms)
    gc.callbacks.append(record)
    return record
