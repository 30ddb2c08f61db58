"""bench.common: how much of a JVM's CPU went to compiling (its JIT compiler threads)."""

import os
import threading
from pathlib import Path

from bench.common import _threads, busiest, compiler_ticks


def test_only_the_compiler_threads_count():
    threads = [("C2 CompilerThre", 120), ("C1 CompilerThre", 30), ("MutationStage-1", 500),
               ("GC Thread#0", 40), ("java", 7)]
    assert compiler_ticks(threads) == 150


def test_a_jvm_that_compiles_nothing_spent_nothing_on_it():
    assert compiler_ticks([("data-plane-kafk", 900), ("kafka-scheduler", 3)]) == 0


def test_threads_reads_every_thread_of_a_live_process():
    gate = threading.Event()
    worker = threading.Thread(target=gate.wait, name="named-for-test")
    worker.start()
    try:
        threads = _threads(Path(f"/proc/{os.getpid()}"))
    finally:
        gate.set()
        worker.join()
    assert len(threads) >= 2  # this thread and the one started above
    assert all(isinstance(name, str) and name and ticks >= 0 for name, ticks in threads)


def test_busiest_gives_cores_over_the_interval_and_leaves_out_the_idle():
    before = {"1 CassandraDaemon": 10.0, "1 CassandraDaemon JIT": 2.0, "2 api": 5.0}
    after = {"1 CassandraDaemon": 14.0, "1 CassandraDaemon JIT": 3.0, "2 api": 5.05, "3 worker": 0.0}
    assert busiest(before, after, 10.0) == {"1 CassandraDaemon": 0.4, "1 CassandraDaemon JIT": 0.1}
