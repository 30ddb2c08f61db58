"""agents.batch_stats: the per-agent line of batch figures, and the quantile it uses."""

from __future__ import annotations

import asyncio
import logging
import types

from hypothesis import given
from hypothesis import strategies as st

from agents.batch_stats import BatchStats, nearest_rank, stage, timed_batch
from agents.runtime import oldest_age_s


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_interval_with_the_batches_of_that_interval_only(caplog):
    clock = Clock()
    stats = BatchStats("moderation", 10, clock=clock)
    caplog.set_level(logging.INFO, logger="starling.agents")
    for i in range(1, 100):
        clock.now = 100.0 + i / 10
        assert stats.add(3, i / 1000, 2 * i / 1000, queued_s=0.001) is None  # 9.9 s: no line yet
    clock.now = 110.0
    line = stats.add(3, 0.1, 0.2, queued_s=0.05)
    assert line is not None and caplog.messages == [line]
    assert line.startswith("moderation: 100 batches, 300 records in 10.0 s;")
    assert "age at batch start p50 50 p99 99 max 100 ms" in line  # ages 1..100 ms
    assert "of which in the worker's queue p50 1 p99 1 max 50 ms" in line
    assert "batch took p50 100 p99 198 max 200 ms" in line
    # The next interval starts empty: its line counts its own batch alone.
    clock.now = 120.0
    line = stats.add(7, 0.5, 0.25)
    assert line is not None and line.startswith("moderation: 1 batches, 7 records in 10.0 s;")
    assert "queue" not in line  # no queue figures given
    assert "age at batch start p50 500 p99 500 max 500 ms" in line


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200), st.floats(0.001, 1.0))
def test_nearest_rank_is_a_value_with_at_least_q_of_them_at_or_below_it(values, q):
    ordered = sorted(values)
    v = nearest_rank(ordered, q)
    assert v in ordered
    at_or_below = sum(1 for x in ordered if x <= v)
    below = sum(1 for x in ordered if x < v)
    assert at_or_below >= q * len(ordered)  # at least q of the values are <= it
    assert below < q * len(ordered)  # and it is the smallest such value


def test_oldest_age_is_that_of_the_earliest_timestamp_and_ignores_records_without_one():
    def record(ts):
        return types.SimpleNamespace(message=types.SimpleNamespace(timestamp=ts))

    assert oldest_age_s([record(90.0), record(95.5), record(None)], now=100.0) == 10.0
    assert oldest_age_s([record(None)], now=100.0) == 0.0
    assert oldest_age_s([], now=100.0) == 0.0
    assert oldest_age_s([record(100.5)], now=100.0) == 0.0  # a producer's clock ahead: never negative


def test_stages_give_p50_and_p99_per_stage_and_count_a_stage_not_reached_as_zero():
    clock = Clock()
    stats = BatchStats("moderation", 10, clock=clock)
    for i in range(1, 101):  # stage "save" takes i ms in batch i; "push" only in the last 10 batches
        clock.now = 100.0 + i / 10  # the 100th batch closes the 10 s interval
        stages = {"save": i / 1000} | ({"push": 0.5} if i > 90 else {})
        line = stats.add(1, 0.0, 0.1, stages=stages)
    assert line is not None
    assert line.endswith("; stages p50/p99 save 50/99, push 0/500 ms")
    # A batch given no stages leaves the line without them.
    clock.now = 120.0
    assert "stages" not in stats.add(1, 0.0, 0.1)


def test_stage_adds_to_the_batch_of_its_task_and_to_none_outside_one():
    ticks = iter(range(100))

    def clock() -> float:
        return float(next(ticks))

    with stage("outside", clock):  # no batch: nothing recorded, nothing raised
        pass

    async def batch() -> dict[str, float]:
        times = timed_batch()
        with stage("load", clock):  # 0 -> 1
            pass

        async def child() -> None:  # a task started within the batch adds to the same batch
            with stage("load", clock):  # 2 -> 3
                pass
            with stage("save", clock):  # 4 -> 5
                pass
        await asyncio.ensure_future(child())
        return times

    assert asyncio.run(batch()) == {"load": 2.0, "save": 1.0}
