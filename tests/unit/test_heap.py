"""The collector's settings and timing for long-running processes (starling/heap.py)."""

import gc
import logging

import pytest

from starling import heap


@pytest.fixture
def restore_gc():
    thresholds, callbacks = gc.get_threshold(), list(gc.callbacks)
    yield
    gc.set_threshold(*thresholds)
    gc.callbacks[:] = callbacks
    gc.unfreeze()


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_watched_collection_is_counted_by_generation(restore_gc):
    record = heap.watch(slow_ms=1e9)
    assert record in gc.callbacks
    gc.collect(0)
    gc.collect(2)
    gc.collect(2)
    s = record.summary()
    assert [s[f"gen{g}"]["collections"] for g in range(3)] == [1, 0, 2]
    assert s["gen2"]["cpu_ms"] >= s["gen2"]["max_ms"] >= 0


def test_a_slow_collection_is_logged_with_what_it_collected(restore_gc, caplog):
    heap.watch(slow_ms=0)
    for _ in range(3):
        Cycle()
    with caplog.at_level(logging.WARNING, logger="starling.heap"):
        gc.collect()
    [line] = [r.getMessage() for r in caplog.records if r.name == "starling.heap"]
    assert "generation 2 collection took" in line
    collected = int(line.split("(")[1].split()[0])
    assert collected >= 3  # the three cycles, each its object and its __dict__


def test_a_fast_collection_is_not_logged(restore_gc, caplog):
    heap.watch(slow_ms=1e9)
    with caplog.at_level(logging.WARNING, logger="starling.heap"):
        gc.collect()
    assert not [r for r in caplog.records if r.name == "starling.heap"]


def test_the_startup_collection_is_counted_but_not_warned_about(restore_gc, caplog):
    record = heap.watch(slow_ms=0)
    with caplog.at_level(logging.WARNING, logger="starling.heap"):
        heap.freeze_startup()
    assert record.summary()["gen2"]["collections"] == 1
    assert not [r for r in caplog.records if r.name == "starling.heap"]


def test_freezing_takes_what_is_alive_out_of_every_generation(restore_gc):
    keep = [Cycle() for _ in range(100)]
    heap.freeze_startup()
    assert gc.get_freeze_count() >= len(keep)
    assert all(not any(o is k for o in gc.get_objects()) for k in keep[:3])


def test_the_worker_thresholds(restore_gc):
    heap.tune()
    assert gc.get_threshold() == heap.GC_THRESHOLDS


def test_take_reports_the_collections_since_the_last_take(restore_gc):
    record = heap.watch(slow_ms=1e9)
    gc.collect(0)
    gc.collect(2)
    first = record.take()
    assert [first[f"gen{g}"]["collections"] for g in range(3)] == [1, 0, 1]
    assert first["gen2"]["cpu_ms"] >= first["gen2"]["max_ms"] >= 0
    assert 0.0 <= first["share_of_process_cpu"] <= 1.0
    gc.collect(1)
    second = record.take()
    assert [second[f"gen{g}"]["collections"] for g in range(3)] == [0, 1, 0]
    assert second["gen2"] == {"collections": 0, "cpu_ms": 0.0, "max_ms": 0.0}
    # The totals since the start are still there.
    assert [record.summary()[f"gen{g}"]["collections"] for g in range(3)] == [1, 1, 1]


def test_the_share_counts_the_collections_against_the_process_cpu_meanwhile(restore_gc):
    record = heap.watch(slow_ms=1e9)
    record.take()
    keep = [Cycle() for _ in range(200_000)]  # a full collection has them all to scan
    gc.collect(2)
    share = record.take()["share_of_process_cpu"]
    assert 0.0 < share < 1.0
    assert keep
