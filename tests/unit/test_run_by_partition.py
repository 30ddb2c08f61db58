"""agents.runtime.run_by_partition: batches at once on disjoint partitions, each partition in
order, every record acked once and only after its batch is done."""

from __future__ import annotations

import asyncio
import random
import time
import types
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import agents.runtime as runtime


class Stream:
    """What run_by_partition uses of a faust stream: events(), ack(), enable_acks."""

    def __init__(self, partitions: list[int], gaps: list[float], sizes: list[int] | None = None) -> None:
        sizes = sizes or [10] * len(partitions)
        self.records = [types.SimpleNamespace(message=types.SimpleNamespace(partition=p, offset=i, value=b"x" * n,
                                                                            timestamp=time.time()))
                        for i, (p, n) in enumerate(zip(partitions, sizes))]
        self.gaps = gaps
        self.enable_acks = True
        self.acked: list[Any] = []

    async def events(self):  # type: ignore[no-untyped-def]
        assert self.enable_acks is False  # acked by run_by_partition, not by the iteration
        for record, gap in zip(self.records, self.gaps):
            await asyncio.sleep(gap)
            yield record
        while len(self.acked) < len(self.records):  # a real stream never ends: let the batches finish
            await asyncio.sleep(0.001)

    async def ack(self, record: Any) -> None:
        self.acked.append(record)


def run_loops(process: Any, rt: Any, stream: Stream, in_flight: int, timeout_s: float) -> None:
    """run_by_partition over `stream` with `process` standing in for runtime._process."""
    original = runtime._process
    runtime._process = process  # type: ignore[assignment]
    try:
        asyncio.run(asyncio.wait_for(runtime.run_by_partition(rt, stream, None, None, "test", in_flight),  # type: ignore[arg-type]
                                     timeout=timeout_s))
    finally:
        runtime._process = original  # type: ignore[assignment]


def run(partitions: list[int], gaps: list[float], work_s: list[float], in_flight: int, batch_max: int,
        within_s: float = 0.0, sizes: list[int] | None = None, batch_max_bytes: int = 10**9) -> dict[str, Any]:
    stream = Stream(partitions, gaps, sizes)
    seen: dict[str, Any] = {"batches": [], "most_at_once": 0, "overlap": False}
    active: list[set[int]] = []
    done: set[int] = set()
    durations = iter(work_s * 1000)

    async def process(_rt: Any, batch: list[Any], _spec: Any, _handle: Any, _name: str, **_kw: Any) -> None:
        parts = {r.message.partition for r in batch}
        if any(parts & other for other in active):
            seen["overlap"] = True
        assert not any(r in stream.acked for r in batch)
        active.append(parts)
        seen["most_at_once"] = max(seen["most_at_once"], len(active))
        seen["batches"].append([r.message.offset for r in batch])
        await asyncio.sleep(next(durations))
        active.remove(parts)
        done.update(r.message.offset for r in batch)

    rt = types.SimpleNamespace(topology=types.SimpleNamespace(tunables=types.SimpleNamespace(
        batch_max=batch_max, batch_within_s=within_s, batch_max_bytes=batch_max_bytes, retry_delays_s=(1,),
        batch_stats_interval_s=10)))
    run_loops(process, rt, stream, in_flight, 30)
    seen["acked"] = [r.message.offset for r in stream.acked]
    seen["done_before_ack"] = done
    return seen


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=120), st.integers(1, 4), st.integers(1, 20),
       st.randoms(use_true_random=False))
def test_partitions_stay_in_order_in_one_batch_at_a_time(partitions, in_flight, batch_max, rnd: random.Random):
    gaps = [rnd.choice([0.0, 0.0, 0.001]) for _ in partitions]
    work = [rnd.choice([0.0, 0.001, 0.003]) for _ in range(8)]
    seen = run(partitions, gaps, work, in_flight, batch_max)
    assert not seen["overlap"]  # no partition in two batches at once
    assert seen["most_at_once"] <= in_flight
    assert all(len(b) <= batch_max for b in seen["batches"])
    assert sorted(seen["acked"]) == list(range(len(partitions)))  # every record acked, once
    # Each partition's records were processed in their order.
    order = [offset for batch in seen["batches"] for offset in batch]
    for p in set(partitions):
        mine = [o for o in order if partitions[o] == p]
        assert mine == sorted(mine)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 300)), min_size=1, max_size=80), st.integers(1, 3),
       st.integers(50, 600))
def test_batches_are_bounded_by_bytes_as_well(records, in_flight, most_bytes):
    partitions, sizes = [p for p, _ in records], [n for _, n in records]
    seen = run(partitions, [0.0] * len(records), [0.001], in_flight, 500, sizes=sizes, batch_max_bytes=most_bytes)
    assert sorted(seen["acked"]) == list(range(len(records)))
    for batch in seen["batches"]:
        assert len(batch) == 1 or sum(sizes[o] for o in batch) <= most_bytes, "within the bytes, or one record alone"


@given(st.lists(st.integers(0, 100), max_size=30), st.integers(1, 300))
def test_batch_length_is_the_longest_prefix_within_the_bytes_and_at_least_one(sizes, most):
    n = runtime.batch_length(sizes, most)
    assert n == 0 if not sizes else 1 <= n <= len(sizes)
    assert n <= 1 or sum(sizes[:n]) <= most
    assert n == len(sizes) or sum(sizes[:n + 1]) > most


def test_records_pile_up_into_few_batches_that_keep_all_their_partitions_together():
    # 300 records on 6 partitions arrive while the first batches run (200 ms each): two batches at
    # once, and the next batch of each loop takes every record waiting on its three partitions,
    # instead of splitting them into batches of one or two partitions.
    partitions = [i % 6 for i in range(300)]
    seen = run(partitions, [0.0] * 300, [0.2], in_flight=2, batch_max=500)
    assert seen["most_at_once"] == 2
    assert len(seen["batches"]) <= 6
    biggest = max(seen["batches"], key=len)
    assert len({partitions[o] for o in biggest}) == 3


def test_a_record_is_acked_only_after_its_batch_is_done():
    acked_early: list[int] = []
    stream_done: set[int] = set()

    async def process(_rt: Any, batch: list[Any], *_args: Any, **_kw: Any) -> None:
        await asyncio.sleep(0.005)
        stream_done.update(r.message.offset for r in batch)

    class Checking(Stream):
        async def ack(self, record: Any) -> None:
            if record.message.offset not in stream_done:
                acked_early.append(record.message.offset)
            await super().ack(record)

    stream = Checking([0, 1, 0, 1, 2, 2, 0], [0.0] * 7)
    rt = types.SimpleNamespace(topology=types.SimpleNamespace(tunables=types.SimpleNamespace(batch_max=3, batch_within_s=0.0,
                                                                                           batch_max_bytes=10**6,
                                                                                           retry_delays_s=(1,),
                                                                                           batch_stats_interval_s=10)))
    run_loops(process, rt, stream, 2, 10)
    assert acked_early == []
    assert len(stream.acked) == 7


def test_a_batch_waits_batch_within_s_to_fill_unless_it_is_full():
    # Records 5 ms apart with a 2 s fill window: one batch of everything per loop, not a batch per
    # record; a full batch (batch_max) does not wait for the window.
    partitions = [i % 2 for i in range(20)]
    seen = run(partitions, [0.005] * 20, [0.0], in_flight=2, batch_max=100, within_s=2.0)
    assert sorted(len(b) for b in seen["batches"]) == [10, 10]
    seen = run([0] * 30, [0.0] * 30, [0.0], in_flight=1, batch_max=10, within_s=60.0)
    assert [len(b) for b in seen["batches"]] == [10, 10, 10]
    # Nor one full by its bytes.
    seen = run([0] * 30, [0.0] * 30, [0.0], in_flight=1, batch_max=100, within_s=60.0, sizes=[10] * 30,
               batch_max_bytes=100)
    assert [len(b) for b in seen["batches"]] == [10, 10, 10]


def settling(partitions: list[int], work_s: dict[int, float], settle_on: set[int], wait_s: float) -> dict[int, set[int]]:
    """Each record alone in its batch, on loop partition % 2; a batch holding a record of
    `settle_on` settles first. Returns, per such record, the records done when its settle returned."""
    stream = Stream(partitions, [0.0] * len(partitions))
    done: set[int] = set()
    seen: dict[int, set[int]] = {}

    async def process(_rt: Any, batch: list[Any], *_args: Any, settle: Any = None, **_kw: Any) -> None:
        offset = batch[0].message.offset
        if offset in settle_on:
            await settle()
            seen[offset] = set(done)
        await asyncio.sleep(work_s.get(offset, 0.0))
        done.add(offset)

    rt = types.SimpleNamespace(topology=types.SimpleNamespace(tunables=types.SimpleNamespace(
        batch_max=1, batch_within_s=0.0, batch_max_bytes=10**6, retry_delays_s=(wait_s,), batch_stats_interval_s=10)))
    run_loops(process, rt, stream, 2, 20)
    assert len(stream.acked) == len(partitions)
    return seen


def test_a_settling_batch_waits_for_what_the_other_loop_had_taken():
    # Record 0 (loop 0) takes 200 ms; record 1 (loop 1) settles as a reply to it would: when its
    # wait ends, record 0 is done (without the wait, nothing would be).
    seen = settling([0, 1], {0: 0.2}, {1}, wait_s=60)
    assert seen[1] == {0}


def test_two_loops_settling_at_once_do_not_wait_for_each_other():
    # Each would wait for the other's record; a 60 s wait would outlast the run's 20 s bound.
    seen = settling([0, 1], {}, {0, 1}, wait_s=60)
    assert set(seen) == {0, 1}


def test_a_settle_ends_after_the_first_retry_delay_however_busy_the_other_loop():
    # Record 0 (loop 0) takes 3 s; record 1's settle gives up after 0.1 s, before record 0 is done.
    seen = settling([0, 1], {0: 3.0}, {1}, wait_s=0.1)
    assert seen[1] == set()


def test_every_loop_works_when_the_worker_holds_every_other_partition():
    # faust's round-robin assignment gives one of two workers partitions 0, 2 and 4: a loop per
    # partition number modulo two left its second loop idle.
    partitions = [(0, 2, 4)[i % 3] for i in range(60)]
    seen = run(partitions, [0.0] * 60, [0.05], in_flight=2, batch_max=500)
    assert seen["most_at_once"] == 2
    assert not seen["overlap"]
    assert sorted(seen["acked"]) == list(range(60))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 7)), max_size=200), st.integers(1, 4))
def test_a_partition_keeps_its_loop_while_it_has_records_in_flight(steps, loops):
    placement = runtime.Placement(loops)
    waiting: list[list[int]] = [[] for _ in range(loops)]
    in_flight: dict[int, list[int]] = {}  # partition -> the loop of each record in flight
    for take, partition in steps:
        if take:
            owned = [len({p for p, s in in_flight.items() if s and s[0] == slot}) for slot in range(loops)]
            slot = placement.take(partition, waiting)
            if in_flight.get(partition):
                assert slot == in_flight[partition][0]  # same loop as its records in flight
            else:
                assert owned[slot] == min(owned)  # a free partition goes to a least-owning loop
            in_flight.setdefault(partition, []).append(slot)
        elif in_flight.get(partition):
            in_flight[partition].pop()
            placement.done(partition)
    assert sum(placement.owned) == len([p for p, s in in_flight.items() if s])
