"""bench.common's reading of a JVM's GC log: the pauses written after a point, and only those."""

from bench.common import GcLog, gc_pause_summary

LOG = """[2026-12-07T11:21:21.145+0000][0.010s] Using G1
[2026-12-07T11:21:24.770+0000][3.635s] GC(0) Pause Young (Normal) (G1 Evacuation Pause) 52M->10M(1024M) 23.690ms
[2026-12-07T11:21:25.381+0000][4.246s] GC(1) Pause Young (Concurrent Start) (Metadata GC Threshold) 25M->12M(1024M) 145.425ms
[2026-12-07T11:21:25.382+0000][4.247s] GC(2) Concurrent Mark Cycle
[2026-12-07T11:21:25.405+0000][4.270s] GC(2) Pause Remark 13M->13M(1024M) 7.259ms
[2026-12-07T11:21:25.419+0000][4.284s] GC(2) Concurrent Mark Cycle 36.612ms
"""


def test_only_pauses_count_not_concurrent_phases():
    s = gc_pause_summary(LOG)
    assert s == {"pauses": 3, "total_ms": 176.4, "p50_ms": 23.7, "max_ms": 145.4, "over_100ms": 1}


def test_a_log_without_pauses():
    assert gc_pause_summary("[0.010s] Using G1\n")["pauses"] == 0


def test_the_pauses_after_the_log_was_opened(tmp_path):
    path = tmp_path / "gc.log"
    path.write_text(LOG)
    since = GcLog(path)
    with path.open("a") as f:
        f.write("[2026-12-07T11:22:00.000+0000][39.0s] GC(3) Pause Young (Normal) (G1 Evacuation Pause) "
                "300M->20M(1024M) 61.000ms\n")
    assert since.pauses() == {"pauses": 1, "total_ms": 61.0, "p50_ms": 61.0, "max_ms": 61.0, "over_100ms": 0}


def test_no_log_or_a_rotated_one_gives_nothing(tmp_path):
    assert GcLog(tmp_path / "missing.log").pauses() is None
    path = tmp_path / "gc.log"
    path.write_text(LOG)
    since = GcLog(path)
    path.write_text("[0.010s] Using G1\n")  # rotated: a new, shorter file
    assert since.pauses() is None
