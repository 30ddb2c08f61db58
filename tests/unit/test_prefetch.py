"""agents.runtime._process with a prefetch: it runs beside the batch's reference check (not after
it), its failure does not stop the batch, and an internal topic (no check) does not run it."""

from __future__ import annotations

import asyncio
import logging
import types
from typing import Any

import pytest

import agents.runtime as runtime
from pipeline.events import Event


def record(offset: int) -> Any:
    return types.SimpleNamespace(message=types.SimpleNamespace(partition=0, offset=offset, value=b"%d" % offset,
                                                               headers=[]))


def event(offset: int) -> Event:
    return Event(offset, "tweet.created", 1, 1_795_000_000_000, 7, {"tweet_id": str(100 + offset), "text": "hi"})


def process(check: Any, prefetch: Any, internal: bool = False, batch: int = 3) -> list[list[int]]:
    """Run _process on `batch` records with `check` standing in for the reference check; returns
    the event ids of each handled batch."""
    rt = types.SimpleNamespace(
        topology=types.SimpleNamespace(tunables=types.SimpleNamespace(max_event_bytes=1000)),
        contracts=types.SimpleNamespace(decode=lambda value, _accepted, _most: event(int(value))))
    spec = types.SimpleNamespace(accepted=frozenset({"tweet.created"}), internal=internal)
    handled: list[list[int]] = []

    async def handle(events: list[Event], _positions: Any) -> list[Any]:
        handled.append([e.event_id for e in events])
        return []

    original = runtime._check_references
    runtime._check_references = check  # type: ignore[assignment]
    try:
        asyncio.run(asyncio.wait_for(runtime._process(rt, [record(i) for i in range(batch)], spec, handle,  # type: ignore[arg-type]
                                                      "test", prefetch=prefetch), timeout=10))
    finally:
        runtime._check_references = original  # type: ignore[assignment]
    return handled


def test_the_prefetch_runs_while_the_references_are_checked():
    # Each waits until the other has begun: run one after the other, they would never finish.
    began = {"check": asyncio.Event(), "prefetch": asyncio.Event()}
    seen: list[int] = []

    async def check(_rt: Any, decoded: list[Any], _settle: Any) -> list[Any]:
        began["check"].set()
        await began["prefetch"].wait()
        return decoded[1:]  # the first event's reference is not known yet: not handled

    async def prefetch(events: list[Event]) -> None:
        began["prefetch"].set()
        await began["check"].wait()
        seen.extend(e.event_id for e in events)

    assert process(check, prefetch) == [[1, 2]]
    assert seen == [0, 1, 2]  # every decoded event, those failing the check included


def test_a_failed_prefetch_leaves_the_batch_to_its_handler(caplog: pytest.LogCaptureFixture):
    async def check(_rt: Any, decoded: list[Any], _settle: Any) -> list[Any]:
        return decoded

    async def prefetch(_events: list[Event]) -> None:
        raise RuntimeError("cassandra said no")

    with caplog.at_level(logging.WARNING, logger="starling.agents"):
        assert process(check, prefetch) == [[0, 1, 2]]
    assert any("prefetch of a batch of 3 failed" in r.getMessage() for r in caplog.records)


def test_an_internal_topic_has_no_check_to_overlap_and_no_prefetch():
    calls: list[str] = []

    async def check(_rt: Any, decoded: list[Any], _settle: Any) -> list[Any]:
        calls.append("check")
        return decoded

    async def prefetch(_events: list[Event]) -> None:
        calls.append("prefetch")

    assert process(check, prefetch, internal=True) == [[0, 1, 2]]
    assert calls == []


class Store:
    """What Histories reads: each author's moderation_by_author rows, counting the reads."""

    def __init__(self, rows: dict[int, list[dict[str, Any]]], gate: asyncio.Event | None = None) -> None:
        self.rows, self.gate, self.read = rows, gate, []

    async def moderation_history_rows(self, authors: list[int], _limit: int) -> dict[int, list[dict[str, Any]]]:
        self.read.append(sorted(authors))
        if self.gate is not None:
            await self.gate.wait()
        return {a: self.rows.get(a, []) for a in authors}


def histories_rt(store: Store) -> Any:
    async def stores() -> tuple[Store, None]:
        return store, None
    return types.SimpleNamespace(stores=stores)


def test_prefetched_histories_serve_the_batch_without_another_read():
    from agents.moderation import Histories

    rows = {7: [{"tweet_id": 1, "at": 1000, "fingerprint": "f", "action": "hide"}]}
    store = Store(rows)
    rt = histories_rt(store)
    histories = Histories(max_entries=100, history_max=32)

    async def go() -> Any:
        await histories.prefetch(rt, {7, 8})
        await histories.prefetch(rt, {7, 8})  # already in memory: not read again
        return await histories.load(rt, {7, 8})

    loaded = asyncio.run(go())
    assert store.read == [[7, 8]]
    assert [s[0] for s in loaded[7].strikes] == [1] and loaded[8].posts == ()


def test_a_prefetch_overtaken_by_a_rebalance_keeps_nothing():
    # Another worker may judge those authors' tweets after the rebalance: what was read before it
    # must not be taken for their history.
    from agents.moderation import Histories

    gate = asyncio.Event()
    store = Store({}, gate)
    rt = histories_rt(store)
    histories = Histories(max_entries=100, history_max=32)

    async def go() -> None:
        task = asyncio.ensure_future(histories.prefetch(rt, {7}))
        while not store.read:
            await asyncio.sleep(0)
        histories.forget()
        gate.set()
        await task
        await histories.load(rt, {7})

    asyncio.run(go())
    assert store.read == [[7], [7]]  # read again after the rebalance
