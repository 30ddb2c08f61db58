"""agents.loop_lag: how late the worker's event loop runs its beats."""

from __future__ import annotations

import asyncio
import time

from agents.loop_lag import LoopLag


def test_take_summarises_the_beats_since_the_last_take_and_starts_over():
    lag = LoopLag(beat_s=0.02, stall_s=0.04)
    assert lag.take() == {"beats": 0}
    for late_ms in [1] * 97 + [50, 120, -3]:  # a beat cannot be early: a negative lateness counts as 0
        lag.record(late_ms / 1000)
    out = lag.take()
    assert out == {"beats": 100, "late_p50_ms": 1.0, "late_p99_ms": 50.0, "late_max_ms": 120.0,
                   "stalls": 2, "stalled_ms": 170.0}
    lag.record(0.005)
    assert lag.take() == {"beats": 1, "late_p50_ms": 5.0, "late_p99_ms": 5.0, "late_max_ms": 5.0,
                          "stalls": 0, "stalled_ms": 0.0}


def test_a_callback_that_holds_the_loop_shows_as_a_stall_at_least_that_long():
    async def scenario() -> dict:
        lag = LoopLag(beat_s=0.01, stall_s=0.04)
        task = asyncio.ensure_future(lag.run())
        try:
            # Until a few beats have come (polled, bounded), then hold the loop for 150 ms.
            deadline = time.monotonic() + 10
            while len(lag.late_s) < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert len(lag.late_s) >= 3
            time.sleep(0.15)
            seen = len(lag.late_s)
            while len(lag.late_s) == seen and time.monotonic() < deadline:
                await asyncio.sleep(0.01)  # the beat that was due during the hold
            return lag.take()
        finally:
            task.cancel()

    out = asyncio.run(scenario())
    assert out["stalls"] >= 1
    # The beat due during the hold came at least the rest of the hold late (150 ms held, due within 10 ms of its start).
    assert out["late_max_ms"] >= 130
    assert out["stalled_ms"] >= out["late_max_ms"]
