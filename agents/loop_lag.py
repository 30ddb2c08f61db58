"""How late the worker's event loop runs what is due: a timer every BEAT_S, and how late each beat came.

Every record a worker holds waits on its event loop: a batch's round trip returns, then waits for
the loop to come round to it. A beat runs late when the loop was busy meanwhile: one callback
that held it (a batch's CPU work, a collection), many that were ready at once, or the process not
scheduled at all (a host with no core to spare). The worker logs, every REPORT_EVERY_S beside
the collector's report (starling/heap.py), how late its beats were (p50, p99, the latest) and
how long the loop spent in stalls of STALL_S or more: what a batch's stage times
(agents/batch_stats.py) include but cannot tell apart from a slow Redis or Cassandra.

A beat costs a timer and a wake-up, 1/BEAT_S times a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from agents.batch_stats import nearest_rank

BEAT_S = 0.02
# A beat this late counts as a stall (its lateness is added to the stalled time).
STALL_S = 0.04


class LoopLag:
    """The lateness of the beats since the last `take`."""

    def __init__(self, beat_s: float = BEAT_S, stall_s: float = STALL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.beat_s = beat_s
        self.stall_s = stall_s
        self.clock = clock
        self.late_s: list[float] = []

    def record(self, late_s: float) -> None:
        self.late_s.append(max(0.0, late_s))

    async def run(self) -> None:
        """Beat until cancelled."""
        while True:
            due = self.clock() + self.beat_s
            await asyncio.sleep(self.beat_s)
            self.record(self.clock() - due)

    def take(self) -> dict[str, Any]:
        """The beats since the last take: how many, their lateness in ms (p50, p99, the latest),
        and the stalls (beats at least stall_s late): how many, and their lateness summed."""
        late, self.late_s = sorted(self.late_s), []
        if not late:
            return {"beats": 0}
        stalls = [s for s in late if s >= self.stall_s]

        def ms(q: float) -> float:
            return round(1000 * nearest_rank(late, q), 1)

        return {"beats": len(late), "late_p50_ms": ms(0.5), "late_p99_ms": ms(0.99), "late_max_ms": ms(1.0),
                "stalls": len(stalls), "stalled_ms": round(1000 * sum(stalls), 1)}
