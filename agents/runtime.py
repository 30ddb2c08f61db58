"""What every agent shares: stores opened once, the dead-letter topic, and a loop that never raises.

An exception escaping a faust agent acks and drops its events (faust docs, "When agents raise an
error"), so the loop below catches everything: bad records go to the dead-letter topic, transient
sink failures are retried with capped backoff until they succeed, and a batch that keeps failing
for another reason is split so that only the events that fail alone are dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cassandra
import faust
import redis.exceptions

from adapters.cassandra_store import CassandraStore
from adapters.redis_store import TimelineCache
from pipeline.errors import InvalidEvent
from pipeline.events import Contracts, Event
from pipeline.settings import Settings
from pipeline.topology import TopicSpec, Topology

log = logging.getLogger("starling.agents")

# Failures of the services themselves: wait and try again, for as long as it takes (the consumer's
# max.poll.interval is 1,000 s and faust only logs a slow batch, so stalling here loses nothing).
TRANSIENT = (
    OSError, asyncio.TimeoutError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError, cassandra.DriverException, cassandra.RequestExecutionException,
)
BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 5.0
# Attempts before a non-transient failure is blamed on the batch's content rather than the sinks.
PERMANENT_ATTEMPTS = 3

Handler = Callable[[Sequence[Event]], Awaitable[None]]


@dataclass
class Runtime:
    settings: Settings
    topology: Topology
    contracts: Contracts
    deadletter: faust.TopicT
    _cassandra: CassandraStore | None = None
    _timelines: TimelineCache | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def stores(self) -> tuple[CassandraStore, TimelineCache]:
        """Open the stores on first use (clients live in the worker's lifetime, never at import)."""
        async with self._lock:
            while self._cassandra is None:
                try:
                    self._cassandra = await CassandraStore.open(self.settings)
                except TRANSIENT as exc:
                    log.warning("cassandra not reachable yet (%s); retrying", exc)
                    await asyncio.sleep(BACKOFF_MAX_S)
            if self._timelines is None:
                self._timelines = TimelineCache.from_url(
                    self.settings.redis_url, self.topology.tunables.timeline_cap)
        return self._cassandra, self._timelines

    async def close(self) -> None:
        if self._timelines is not None:
            await self._timelines.close()
        if self._cassandra is not None:
            await self._cassandra.close()

    async def dead_letter(self, ev: faust.EventT, reason: str, detail: str) -> None:
        """Produce the raw record with why it failed, and wait for the broker's ack."""
        msg = ev.message
        headers = [
            ("reason", reason.encode()), ("detail", detail[:1000].encode()),
            ("source_topic", msg.topic.encode()), ("source_partition", str(msg.partition).encode()),
            ("source_offset", str(msg.offset).encode()),
            ("failed_at", str(int(time.time() * 1000)).encode()),
        ]
        value = msg.value if isinstance(msg.value, bytes) else b""

        async def send() -> None:
            fut = await self.deadletter.send(key=msg.key, value=value, headers=headers)
            await fut

        await retry(send, f"dead-letter {msg.topic}[{msg.partition}]@{msg.offset}")
        log.warning("dead-lettered %s[%d]@%d: %s: %s", msg.topic, msg.partition, msg.offset, reason, detail)


async def retry(action: Callable[[], Awaitable[Any]], what: str) -> None:
    """Run `action` until it succeeds; only transient failures are retried here."""
    delay = BACKOFF_START_S
    attempt = 0
    while True:
        attempt += 1
        try:
            await action()
            return
        except TRANSIENT as exc:
            log.warning("%s failed (attempt %d, retrying in %.1fs): %r", what, attempt, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)


async def run_batches(rt: Runtime, stream: faust.StreamT, spec: TopicSpec, handle: Handler, name: str) -> None:
    """The body of every ingest agent: decode, dead-letter the bad, sink the good, never raise."""
    allowed = frozenset(spec.events)
    tun = rt.topology.tunables
    await rt.stores()
    async for batch in stream.take_events(tun.batch_max, within=tun.batch_within_s):
        good: list[tuple[faust.EventT, Event]] = []
        for ev in batch:
            try:
                good.append((ev, rt.contracts.decode(ev.message.value, allowed, tun.max_event_bytes)))
            except InvalidEvent as exc:
                await rt.dead_letter(ev, exc.reason, exc.detail)
        if good:
            await _handle_guarded(rt, good, handle, name)


async def _handle_guarded(rt: Runtime, good: list[tuple[faust.EventT, Event]], handle: Handler, name: str) -> None:
    events = [e for _, e in good]
    for attempt in range(1, PERMANENT_ATTEMPTS + 1):
        try:
            await retry(lambda: handle(events), f"{name} batch of {len(events)}")
            return
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - must not escape the agent
            log.exception("%s: batch of %d failed (attempt %d)", name, len(events), attempt)
    # Still failing: find the culprits one by one; the rest are processed normally.
    for ev, event in good:
        try:
            await retry(lambda: handle([event]), f"{name} event {event.event_id}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            await rt.dead_letter(ev, "processing_failed", f"{type(exc).__name__}: {exc}")
