"""`starling worker` is ready to judge by the time it joins its consumer group."""

from __future__ import annotations

import types

import uvloop

import agents.main
from agents import moderation
from pipeline.moderation import TextModel
from pipeline.settings import Settings
from starling import heap


def test_the_worker_reads_the_text_model_before_it_starts_consuming(monkeypatch, tmp_path):
    # `stack up` calls the worker ready when its consumer group is stable, which happens as soon as
    # faust starts; a model read by the agent after that held the first batch for seconds.
    seen: dict[str, object] = {}

    class Worker:
        def __init__(self, app: object, loglevel: str) -> None:
            seen["model at start"] = moderation._preloaded

        def execute_from_commandline(self) -> None:
            seen["ran"] = True

    monkeypatch.setattr(agents.main.faust, "Worker", Worker)
    # The process's collector settings are starling/heap.py's (tests/unit/test_heap.py), not this test's.
    monkeypatch.setattr(agents.main, "heap", types.SimpleNamespace(tune=lambda: None, watch=heap.CollectionLog,
                                                                   freeze_startup=lambda: None,
                                                                   REPORT_EVERY_S=heap.REPORT_EVERY_S))
    monkeypatch.setattr(moderation, "_preloaded", None)
    # Captured, not set: the test session keeps its own loops.
    monkeypatch.setattr(agents.main.asyncio, "set_event_loop_policy", lambda policy: seen.update(policy=policy))
    agents.main.run_worker(Settings.from_env({"STARLING_STATE_DIR": str(tmp_path)}))
    assert seen["ran"] is True
    # The worker's loops (its own and the consumer thread's) are uvloop's: the record hand-off
    # from the consumer thread took p50 224-427 ms on asyncio's loop at 300 tweets/s, 52-56 on uvloop's.
    assert isinstance(seen["policy"], uvloop.EventLoopPolicy)
    assert isinstance(seen["model at start"], TextModel)
    assert moderation.preload() is seen["model at start"]  # read once
