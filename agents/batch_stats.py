"""How long an agent's records wait and its batches take: one log line per agent and interval.

Delivery latency is the sum of each agent's share: how long a record travelled before its loop
took it (its age at the batch's start, from its Kafka timestamp), and how long the batch it was
in took. A line every `interval_s` names both per agent, so a slow stage shows in the worker's
log, with no profiler attached and no extra round trip.

Within a batch, `stage(name)` times a part of the work (a round trip, a model call); the line
gives each stage's p50 and p99 over the interval's batches. Stages may overlap (steps run side by
side) or nest, so they need not add up to the batch's time.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

log = logging.getLogger("starling.agents")

# The stage times of the batch the current task works on (a task started within it, as side_by_side
# starts them, shares the dict); None outside a timed batch.
_stages: ContextVar[dict[str, float] | None] = ContextVar("starling_batch_stages", default=None)


def timed_batch() -> dict[str, float]:
    """Start timing the stages of a new batch in this task; returns the dict they accumulate in."""
    times: dict[str, float] = {}
    _stages.set(times)
    return times


@contextmanager
def stage(name: str, clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    """Add the time spent inside to the current batch's `name` stage (nothing outside a batch)."""
    times = _stages.get()
    if times is None:
        yield
        return
    began = clock()
    try:
        yield
    finally:
        times[name] = times.get(name, 0.0) + clock() - began


async def timed(name: str, step: Awaitable[None]) -> None:
    """Await a step as stage `name` (for steps run side by side, each timed on its own)."""
    with stage(name):
        await step


def nearest_rank(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile (0 < q <= 1) of ascending values, by nearest rank."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


class BatchStats:
    """The batches of one agent since the last line: count, records, the oldest record's age when
    its batch began, and how long each batch took."""

    def __init__(self, name: str, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.interval_s = interval_s
        self.clock = clock
        self.since = clock()
        self.records = 0
        self.ages_s: list[float] = []
        self.queued_s: list[float] = []
        self.took_s: list[float] = []
        self.stages: dict[str, list[float]] = {}

    def add(self, records: int, oldest_age_s: float, took_s: float, queued_s: float | None = None,
            stages: Mapping[str, float] | None = None) -> str | None:
        """Counts one batch; returns (and logs) the line when the interval is over. `queued_s`:
        how long its oldest record waited in the worker for a batch (loops that keep a queue);
        `stages`: the batch's stage times (a stage a batch did not reach counts as 0 for it)."""
        given = stages or {}
        for name in given.keys() - self.stages.keys():
            self.stages[name] = [0.0] * len(self.took_s)
        for name, times in self.stages.items():
            times.append(given.get(name, 0.0))
        self.records += records
        self.ages_s.append(oldest_age_s)
        if queued_s is not None:
            self.queued_s.append(queued_s)
        self.took_s.append(took_s)
        now = self.clock()
        if now - self.since < self.interval_s:
            return None
        line = self.line(now - self.since)
        log.info("%s", line)
        self.since, self.records, self.ages_s, self.queued_s, self.took_s = now, 0, [], [], []
        self.stages = {}
        return line

    def line(self, seconds: float) -> str:
        def ms(values: list[float]) -> str:
            ordered = sorted(values)
            return " ".join(f"{label} {round(1000 * nearest_rank(ordered, q))}"
                            for label, q in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))) + " ms"

        def p50_p99(values: list[float]) -> str:
            ordered = sorted(values)
            return "/".join(str(round(1000 * nearest_rank(ordered, q))) for q in (0.5, 0.99))

        queued = f"; of which in the worker's queue {ms(self.queued_s)}" if self.queued_s else ""
        stages = ("; stages p50/p99 " + ", ".join(f"{name} {p50_p99(times)}" for name, times in self.stages.items())
                  + " ms") if self.stages else ""
        return (f"{self.name}: {len(self.took_s)} batches, {self.records} records in {seconds:.1f} s; "
                f"oldest record's age at batch start {ms(self.ages_s)}{queued}; batch took {ms(self.took_s)}"
                f"{stages}")
