"""What every agent shares: stores opened once, the dead-letter topic, and a loop that never raises.

An exception escaping a faust agent acks and drops its events (faust docs, "When agents raise an
error"), so the loop below catches everything: bad records go to the dead-letter topic, transient
sink failures are retried with capped backoff until they succeed, and a batch that keeps failing
for another reason is split so that only the events that fail alone are dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence, Sized
from dataclasses import dataclass, field
from typing import Any

import cassandra
import faust
import redis.exceptions

from adapters.cassandra_store import CassandraStore
from adapters.graph_cache import GraphCache
from adapters.hot_cache import HotCache
from adapters.kafka import EventProducer
from adapters.redis_store import TimelineCache
from agents.batch_stats import BatchStats, stage, timed_batch
from pipeline import forwarding, references
from pipeline.errors import InvalidEvent
from pipeline.references import Problem
from pipeline.events import Contracts, Event, encode
from pipeline.fanout import FollowerLists
from pipeline.routing import explicit_partition, partition_key
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

# A handler writes a batch and returns the events it refused (with why): they are dead-lettered.
Rejections = list[tuple[Event, Problem]]
# Each event comes with its (partition, offset): agents that keep offset-guarded state need it.
Positions = Sequence[tuple[int, int]]
Handler = Callable[[Sequence[Event], Positions], Awaitable[Rejections]]
# Waits until the batch loops beside this one have finished what they had taken (run_by_partition).
Settle = Callable[[], Awaitable[None]]
# Reads what a batch's handler will need (into the agent's own caches) while its references are
# checked: one round trip to the stores fewer on the batch's way through. Given every decoded event
# (some may fail the check). Its failure is the handler's to meet: the handler reads it again.
Prefetch = Callable[[Sequence[Event]], Awaitable[None]]
# Registered users are never removed and their registration time never changes, so a positive
# lookup can be remembered (user id -> created_at, epoch ms).
KNOWN_USERS_CACHE = 200_000


@dataclass
class Runtime:
    settings: Settings
    topology: Topology
    contracts: Contracts
    deadletter: faust.TopicT
    retry_topic: faust.TopicT
    derived_topics: frozenset[str] = frozenset()  # topology names of the topics agents emit to
    known_users: OrderedDict[int, int] = field(default_factory=OrderedDict)
    _cassandra: CassandraStore | None = None
    _timelines: TimelineCache | None = None
    _graph: GraphCache | None = None
    _hot: HotCache | None = None
    _follower_lists: FollowerLists | None = None
    _producer: EventProducer | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _active_repair: asyncio.Task[None] | None = None

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
                self._graph = GraphCache(self._timelines.redis)
                self._hot = HotCache(self._timelines.redis)
        return self._cassandra, self._timelines

    @property
    def graph(self) -> GraphCache:
        assert self._graph is not None, "call stores() first"
        return self._graph

    def repair_active_soon(self) -> None:
        """Repair the last-read set in the background (GraphCache.repair_active), unless this
        worker is repairing it already; fan-out pushes to every built timeline meanwhile."""
        if self._active_repair is None or self._active_repair.done():
            self._active_repair = asyncio.get_running_loop().create_task(self._repair_active())

    async def _repair_active(self) -> None:
        started = time.monotonic()
        try:
            if await self.graph.repair_active(time.time()):
                log.info("last-read set complete again (repaired in %.1f s)", time.monotonic() - started)
            else:
                log.warning("last-read set lost again while being repaired; the next pushed tweet retries")
        except Exception:  # noqa: BLE001 - the next pushed tweet starts another repair
            log.exception("repairing the last-read set failed")

    @property
    def follower_lists(self) -> FollowerLists:
        """Push-mode authors' follower lists (pipeline/fanout.py), kept for the worker's life but
        started afresh once spent. A batch takes them once and uses what it took throughout: a
        batch in flight (another loop's, another agent's) keeps its own when a new one starts."""
        if self._follower_lists is None or self._follower_lists.spent:
            self._follower_lists = FollowerLists(self.topology.tunables.follower_cache_ids)
        return self._follower_lists

    @property
    def hot(self) -> HotCache:
        """The API's read caches, which agents keep right after writing Cassandra."""
        assert self._hot is not None, "call stores() first"
        return self._hot

    async def close(self) -> None:
        if self._producer is not None:
            self._producer.close()  # every emit awaited its acks: nothing is left to flush
        if self._timelines is not None:
            await self._timelines.close()
        if self._cassandra is not None:
            await self._cassandra.close()

    async def existing_users(self, user_ids: set[int]) -> set[int]:
        """Which of these users are registered."""
        return set(await self.registered_at(user_ids))

    async def registered_at(self, user_ids: set[int]) -> dict[int, int]:
        """When each of these users registered (epoch ms; a user not registered is absent):
        remembered, else through the hot user cache (Redis, then Cassandra for the rest, filling
        Redis). The reference check asks first; the moderation agent asks right after for its
        authors' account age and finds them remembered, without a second read of their profiles."""
        known = {u: self.known_users[u] for u in user_ids if u in self.known_users}
        missing = user_ids - known.keys()
        if missing:
            cass, _ = await self.stores()
            for u, user in (await self.hot.users(missing, cass.get_users)).items():
                known[u] = self.known_users[u] = user.created_at
            while len(self.known_users) > KNOWN_USERS_CACHE:
                self.known_users.popitem(last=False)
        return known

    async def emit(self, events: Sequence[Event], to: str | None = None) -> None:
        """Produce derived events to their topics (by topology.yaml, or `to`), waiting for every ack
        before the batch that caused them is done: its offsets are committed only after. Records of
        one key keep their order (one producer, sent in sequence)."""
        await self.emit_all((events, to))

    async def emit_all(self, *groups: tuple[Sequence[Event], str | None]) -> None:
        """emit() for several (events, to) groups, all sent before any ack is awaited: one wait for
        the broker per batch instead of one per group.

        Through librdkafka (adapters/kafka.EventProducer), not faust's producer: aiokafka keeps one
        produce request in flight per broker and does its batching in Python on this loop; in a
        moderation batch at 250 tweets/s on the mean-30 graph, waiting for the acks of its ~300
        records took p50 207-278 ms of the batch's 550-700 ms. Each derived topic has this one
        producer, so one key's records keep their order."""
        records = []
        for events, to in groups:
            for e in events:
                name = to or self.topology.topic_for_event(e.type).name
                if name not in self.derived_topics:
                    raise KeyError(f"{name} is not a derived topic")
                records.append((self.settings.topic(name), partition_key(e), encode(e), explicit_partition(e)))
        if records:
            if self._producer is None:
                self._producer = EventProducer(self.settings, self.topology)
            await self._producer.send_all(records)

    async def send_retry(self, ev: faust.EventT, attempt: int, delay_s: float) -> None:
        """Re-queue a record whose references are unknown yet; the retry agent re-delivers it."""
        msg = ev.message
        not_before = int(time.time() * 1000 + delay_s * 1000)
        headers = [("retry_topic", msg.topic.encode()), ("retry_attempt", str(attempt).encode()),
                   ("retry_not_before", str(not_before).encode()), *origin_headers(ev)]
        value = msg.value if isinstance(msg.value, bytes) else b""

        async def send() -> None:
            fut = await self.retry_topic.send(key=msg.key, value=value, headers=headers)
            await fut

        await retry(send, f"retry {msg.topic}[{msg.partition}]@{msg.offset}")

    async def dead_letter(self, ev: faust.EventT, reason: str, detail: str) -> None:
        """Produce the raw record with why it failed, and wait for the broker's ack."""
        msg = ev.message
        origin = dict(origin_headers(ev))
        headers = [
            ("reason", reason.encode()), ("detail", detail[:1000].encode()),
            ("source_topic", origin["origin_topic"]), ("source_partition", origin["origin_partition"]),
            ("source_offset", origin["origin_offset"]), ("attempts", str(_attempt(ev) + 1).encode()),
            ("failed_at", str(int(time.time() * 1000)).encode()),
        ]
        value = msg.value if isinstance(msg.value, bytes) else b""

        async def send() -> None:
            fut = await self.deadletter.send(key=msg.key, value=value, headers=headers)
            await fut

        await retry(send, f"dead-letter {msg.topic}[{msg.partition}]@{msg.offset}")
        log.warning("dead-lettered %s[%d]@%d: %s: %s", msg.topic, msg.partition, msg.offset, reason, detail)


def failpoint(name: str) -> None:
    """Crash injection for the exactness tests: with STARLING_FAILPOINT=<name> in its environment the
    worker dies at that point, without cleanup or offset commit, exactly as under SIGKILL."""
    if os.environ.get("STARLING_FAILPOINT") == name:
        log.warning("failpoint %s: exiting now", name)
        os._exit(137)


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


async def side_by_side(*steps: Awaitable[None]) -> None:
    """Run steps concurrently. On the first failure the others are cancelled (and waited for), and
    that failure itself is raised, not an ExceptionGroup as asyncio.TaskGroup would: `retry`
    tells a transient failure by its type."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()  # a no-op on a finished task
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_batches(rt: Runtime, stream: faust.StreamT, spec: TopicSpec, handle: Handler, name: str,
                      prefetch: Prefetch | None = None) -> None:
    """The body of every ingest agent: decode, check references, sink the good, never raise.

    Each topic has one agent (topology.yaml): it dead-letters bad records and sends unresolved
    references to the retry topic, whose redelivery reaches it again. An agent whose topology entry
    sets batches_in_flight > 1 runs that many batch loops at once, each on its own partitions
    (run_by_partition). With `prefetch`, it runs beside each batch's reference check.
    """
    await rt.stores()
    in_flight = rt.topology.agents[name].batches_in_flight
    if in_flight > 1:
        await run_by_partition(rt, stream, spec, handle, name, in_flight, prefetch)
        return
    tun = rt.topology.tunables
    stats = BatchStats(name, tun.batch_stats_interval_s)
    async for batch in stream.take_events(tun.batch_max, within=tun.batch_within_s):
        began, age_s, stages = time.monotonic(), oldest_age_s(batch), timed_batch()
        await _process(rt, batch, spec, handle, name, prefetch=prefetch)
        stats.add(len(batch), age_s, time.monotonic() - began, stages=stages)


async def run_by_partition(rt: Runtime, stream: faust.StreamT, spec: TopicSpec, handle: Handler, name: str,
                           in_flight: int, prefetch: Prefetch | None = None) -> None:
    """`in_flight` batch loops side by side, each owning some of the partitions: a partition's
    records are processed in their order, one batch at a time, so state kept per key (the topic's
    key) is never touched by two batches at once. Each loop batches as faust's take does (up to
    batch_max, waiting batch_within_s for a batch to fill); while one loop waits on Redis,
    Cassandra or Kafka, the other works.

    A batch is also bounded by bytes (batch_max_bytes): a packed record (pipeline/forwarding.py)
    carries hundreds of events, and 500 of them would make a batch of tens of thousands.

    A loop owns its partitions while any of their records is in flight (at a steady rate, for
    good): loops that took whichever partitions were free kept splitting them into ever smaller
    batches (one or two partitions each), whose round trips made the pipeline fall behind at 200
    tweets/s (bench/fanout.py). A partition with nothing in flight goes to the loop owning the
    fewest (see Placement): a loop per partition number modulo the loops left one loop idle on
    every worker of two, each given every other partition (faust's round-robin assignment).

    Records are acked only when their batch is done (faust commits an offset once every record up
    to it is acked, whatever order the acks come in): a crash replays what was not finished.
    """
    tun = rt.topology.tunables
    stream.enable_acks = False
    queues: list[list[faust.EventT]] = [[] for _ in range(in_flight)]
    arrived: list[list[float]] = [[] for _ in range(in_flight)]  # when each waiting record was taken (BatchStats)
    queued = [0] * in_flight  # bytes of each loop's waiting records
    ready = [asyncio.Event() for _ in range(in_flight)]
    full = [asyncio.Event() for _ in range(in_flight)]
    held = held_bytes = 0  # records taken from the stream and not acked yet, and their bytes
    room = asyncio.Event()
    room.set()
    # Then stop taking records (faust pauses the fetch).
    most_held, most_bytes = tun.batch_max * (in_flight + 1), tun.batch_max_bytes * (in_flight + 1)
    placement = Placement(in_flight)
    taken = [0] * in_flight  # records given to each loop so far
    finished = [0] * in_flight  # of those, the ones whose batch is done (a loop takes its records in order)
    settling = [False] * in_flight
    progress = asyncio.Condition()
    most_wait_s = tun.retry_delays_s[0] if tun.retry_delays_s else 1.0
    stats = BatchStats(name, tun.batch_stats_interval_s)

    def settler(slot: int) -> Settle:
        async def settle() -> None:
            """Until the other loops have finished every record they had taken by now (a tweet this
            loop's batch refers to may be among them, not stored yet), or the first retry's delay
            has passed. A loop that is itself settling is not waited for: two loops waiting for
            each other would both sit out the delay."""
            targets = [(j, taken[j]) for j in range(in_flight) if j != slot]
            async with progress:
                settling[slot] = True
                progress.notify_all()
                try:
                    await asyncio.wait_for(progress.wait_for(
                        lambda: all(finished[j] >= n or settling[j] for j, n in targets)), most_wait_s)
                except asyncio.TimeoutError:
                    log.warning("%s: loop %d waited %.1fs for the other loops' records", name, slot, most_wait_s)
                finally:
                    settling[slot] = False
        return settle

    async def loop(slot: int) -> None:
        nonlocal held, held_bytes
        records, times = queues[slot], arrived[slot]
        settle = settler(slot)
        while True:
            await ready[slot].wait()
            if len(records) < tun.batch_max and queued[slot] < tun.batch_max_bytes and tun.batch_within_s > 0:
                # Let the batch fill for batch_within_s (as faust's take does), unless it is full.
                full[slot].clear()
                try:
                    await asyncio.wait_for(full[slot].wait(), tun.batch_within_s)
                except asyncio.TimeoutError:
                    pass
            batch = records[:batch_length([_size(ev) for ev in records[:tun.batch_max]], tun.batch_max_bytes)]
            size = sum(map(_size, batch))
            queued_s = time.monotonic() - times[0]
            del records[:len(batch)], times[:len(batch)]
            queued[slot] -= size
            if not records:
                ready[slot].clear()
            began = time.monotonic()
            age_s = oldest_age_s(batch)
            stages = timed_batch()
            try:
                await _process(rt, batch, spec, handle, name, settle=settle, prefetch=prefetch)
                for ev in batch:
                    await stream.ack(ev)
                stats.add(len(batch), age_s, time.monotonic() - began, queued_s, stages)
            except Exception:  # noqa: BLE001 - _process handles its failures; left unacked, replayed after a restart
                log.exception("%s: batch of %d failed outside its handler", name, len(batch))
            finally:
                for ev in batch:
                    placement.done(ev.message.partition)
                held -= len(batch)
                held_bytes -= size
                if held < most_held and held_bytes < most_bytes:
                    room.set()
                finished[slot] += len(batch)
                async with progress:
                    progress.notify_all()

    loops = [asyncio.ensure_future(loop(slot)) for slot in range(in_flight)]
    try:
        async for ev in stream.events():
            slot = placement.take(ev.message.partition, queues)
            queues[slot].append(ev)
            arrived[slot].append(time.monotonic())
            taken[slot] += 1
            queued[slot] += _size(ev)
            ready[slot].set()
            if len(queues[slot]) >= tun.batch_max or queued[slot] >= tun.batch_max_bytes:
                full[slot].set()
            held += 1
            held_bytes += _size(ev)
            if held >= most_held or held_bytes >= most_bytes:
                room.clear()
                await room.wait()
    finally:
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)


def oldest_age_s(batch: Sequence[faust.EventT], now: float | None = None) -> float:
    """How long ago the oldest record of the batch was produced (its Kafka timestamp)."""
    stamps = [ev.message.timestamp for ev in batch if ev.message.timestamp]
    return max(0.0, (time.time() if now is None else now) - min(stamps)) if stamps else 0.0


class Placement:
    """Which batch loop a partition's records go to: the loop it has while any of its records is
    in flight (taken and not done), so its batches stay in order; else the loop owning the fewest
    partitions with records in flight (ties: the fewest records waiting, then the lowest number)."""

    def __init__(self, loops: int) -> None:
        self.owner: dict[int, int] = {}  # partition -> loop, while it has records in flight
        self.in_flight: dict[int, int] = {}  # partition -> records taken and not done
        self.owned = [0] * loops  # partitions each loop owns

    def take(self, partition: int, waiting: Sequence[Sized]) -> int:
        slot = self.owner.get(partition)
        if slot is None:
            slot = min(range(len(self.owned)), key=lambda s: (self.owned[s], len(waiting[s]), s))
            self.owner[partition] = slot
            self.owned[slot] += 1
        self.in_flight[partition] = self.in_flight.get(partition, 0) + 1
        return slot

    def done(self, partition: int) -> None:
        left = self.in_flight[partition] - 1
        if left:
            self.in_flight[partition] = left
            return
        del self.in_flight[partition]
        self.owned[self.owner.pop(partition)] -= 1


def batch_length(sizes: Sequence[int], most_bytes: int) -> int:
    """How many of the first records (of these sizes) make a batch: as many as fit in `most_bytes`,
    and at least one (a record larger than that is a batch alone)."""
    total = 0
    for n, size in enumerate(sizes):
        total += size
        if total > most_bytes:
            return max(n, 1)
    return len(sizes)


def _size(ev: faust.EventT) -> int:
    value = ev.message.value
    return len(value) if isinstance(value, bytes) else 0


async def _process(rt: Runtime, batch: Sequence[faust.EventT], spec: TopicSpec, handle: Handler, name: str,
                   settle: Settle | None = None, prefetch: Prefetch | None = None) -> None:
    tun = rt.topology.tunables
    decoded: list[tuple[faust.EventT, Event]] = []
    for ev in batch:
        try:
            decoded.append((ev, rt.contracts.decode(ev.message.value, spec.accepted, tun.max_event_bytes)))
        except InvalidEvent as exc:
            await rt.dead_letter(ev, exc.reason, exc.detail)
    if not decoded:
        return
    # A packed record's events take its place (they share its position: acked, replayed and
    # dead-lettered with it).
    decoded = [(ev, event) for ev, packed in decoded for event in forwarding.unpacked([packed])]
    if spec.internal:  # an internal topic's records were checked on the way in
        await _handle_guarded(rt, decoded, handle, name)
        return
    with stage("refs"):
        if prefetch is None:
            good = await _check_references(rt, decoded, settle)
        else:
            good, _ = await asyncio.gather(_check_references(rt, decoded, settle),
                                           _prefetch_quietly(prefetch, [e for _, e in decoded], name))
    if good:
        await _handle_guarded(rt, good, handle, name)


async def _prefetch_quietly(prefetch: Prefetch, events: Sequence[Event], name: str) -> None:
    try:
        await prefetch(events)
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - an optimisation only: the handler reads what it still lacks
        log.warning("%s: prefetch of a batch of %d failed; the handler reads it", name, len(events), exc_info=True)


async def _check_references(rt: Runtime, decoded: list[tuple[faust.EventT, Event]],
                            settle: Settle | None = None) -> list[tuple[faust.EventT, Event]]:
    """The events whose references hold; the others go to the retry topic (a reference not known
    yet) or the dead-letter topic. With `settle` (run_by_partition's other loops may hold a tweet
    this batch refers to, e.g. a reply's parent by an author on another loop's partitions), a batch
    with a reference not known yet waits for them, once, and is checked again: the retry topic
    would deliver it seconds late, after its author's later tweets."""
    events = [e for _, e in decoded]
    problems = await _reference_problems(rt, events)
    if settle is not None and any(p is not None and p.reason == references.UNKNOWN_REFERENCE and _attempt(ev) == 0
                                  for (ev, _), p in zip(decoded, problems)):
        await settle()
        problems = await _reference_problems(rt, events)
    good = []
    for (ev, event), problem in zip(decoded, problems):
        if problem is None:
            good.append((ev, event))
            continue
        attempt = _attempt(ev)
        delays = rt.topology.tunables.retry_delays_s
        delay = references.retry_delay(attempt, delays) if problem.reason == references.UNKNOWN_REFERENCE else None
        if delay is not None:
            await rt.send_retry(ev, attempt + 1, delay)
        else:
            await rt.dead_letter(ev, problem.reason, problem.detail)
    return good


async def _reference_problems(rt: Runtime, events: list[Event]) -> list[references.Problem | None]:
    user_ids, tweet_ids = references.needs(events)
    found: dict[str, Any] = {}

    async def load() -> None:
        cass, _ = await rt.stores()
        found["users"], found["tweets"] = await asyncio.gather(rt.existing_users(user_ids), cass.tweet_states(tweet_ids))

    await retry(load, "reference lookup")
    return references.check_batch(events, found["users"], found["tweets"])


def _headers(ev: faust.EventT) -> dict[str, bytes]:
    raw = ev.message.headers or []
    items = raw.items() if isinstance(raw, dict) else raw
    return {k: v for k, v in items}


def origin_headers(ev: faust.EventT) -> list[tuple[str, bytes]]:
    """Where the record was first produced: kept through re-deliveries, reported when it fails."""
    h = _headers(ev)
    if "origin_topic" in h:
        return [(k, h[k]) for k in ("origin_topic", "origin_partition", "origin_offset")]
    msg = ev.message
    return [("origin_topic", msg.topic.encode()), ("origin_partition", str(msg.partition).encode()),
            ("origin_offset", str(msg.offset).encode())]


def _attempt(ev: faust.EventT) -> int:
    """How many times this record has been re-delivered through the retry topic."""
    try:
        return int(_headers(ev).get("retry_attempt", b"0"))
    except ValueError:
        return 0


async def _handle_guarded(rt: Runtime, good: list[tuple[faust.EventT, Event]], handle: Handler, name: str) -> None:
    by_event = {id(e): ev for ev, e in good}
    events = [e for _, e in good]
    positions = [(ev.message.partition, ev.message.offset) for ev, _ in good]
    for attempt in range(1, PERMANENT_ATTEMPTS + 1):
        try:
            rejected: Rejections = []

            async def run() -> None:
                rejected[:] = await handle(events, positions)

            await retry(run, f"{name} batch of {len(events)}")
            for event, problem in rejected:
                await rt.dead_letter(by_event[id(event)], problem.reason, problem.detail)
            return
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - must not escape the agent
            log.exception("%s: batch of %d failed (attempt %d)", name, len(events), attempt)
    # Still failing: find the culprits one by one; the rest are processed normally.
    for ev, event in good:
        try:
            out: Rejections = []

            async def run_one(event: Event = event, ev: faust.EventT = ev) -> None:
                out[:] = await handle([event], [(ev.message.partition, ev.message.offset)])

            await retry(run_one, f"{name} event {event.event_id}")
            for _e, problem in out:
                await rt.dead_letter(ev, problem.reason, problem.detail)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            await rt.dead_letter(ev, "processing_failed", f"{type(exc).__name__}: {exc}")


async def redeliver(rt: Runtime, stream: faust.StreamT) -> None:
    """The retry agent: wait until each record's time, then put it back on its source topic."""
    async for ev in stream.events():
        headers = _headers(ev)
        source = headers.get("retry_topic", b"").decode()
        not_before = int(headers.get("retry_not_before", b"0") or 0)
        if not source:
            await rt.dead_letter(ev, "processing_failed", "retry record without retry_topic header")
            continue
        wait_s = not_before / 1000 - time.time()
        if wait_s > 0:
            await asyncio.sleep(min(wait_s, max(rt.topology.tunables.retry_delays_s)))
        value = ev.message.value if isinstance(ev.message.value, bytes) else b""
        out_headers = [("retry_attempt", headers.get("retry_attempt", b"1")), *origin_headers(ev)]
        topic = rt.retry_topic.app.topic(source, key_serializer="raw", value_serializer="raw")

        async def send() -> None:
            fut = await topic.send(key=ev.message.key, value=value, headers=out_headers)
            await fut

        await retry(send, f"re-deliver to {source}")
