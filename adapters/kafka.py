"""confluent-kafka producer for everything outside faust: idempotent, acks=all, awaitable."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterable, Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from pipeline.events import Event, encode
from pipeline.routing import explicit_partition, partition_key, topic_of
from pipeline.settings import Settings
from pipeline.topology import Topology


def read_to_end(bootstrap: str, topic: str, timeout_s: float = 30, strict: bool = True) -> Iterator[Message]:
    """Every record a topic holds now, partition by partition in offset order, from its oldest
    retained offset to the end it had when called; no consumer group is committed. Past
    `timeout_s` it raises TimeoutError if `strict`, else stops with what it read."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "enable.auto.commit": False,
                         "group.id": f"starling-read-{secrets.token_hex(4)}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}
        pending = {p for p, (lo, hi) in ends.items() if hi > lo}
        consumer.assign([TopicPartition(topic, p, ends[p][0]) for p in pending])
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            if msg.offset() >= ends[msg.partition()][1] - 1:
                pending.discard(msg.partition())
            yield msg
        if pending and strict:
            raise TimeoutError(f"could not read {topic} to its end within {timeout_s}s")
    finally:
        consumer.close()


# librdkafka's RD_KAFKA_PARTITION_UA, produce()'s default: the partitioner places the record by key.
UNASSIGNED = -1


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        # The broker de-duplicates this producer's retries (KIP-98); acks=all is implied.
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        # Java's and faust's partitioner: one key, one partition, whoever produces it.
        "partitioner": "murmur2_random",
        "compression.type": "lz4",
        **overrides,
    }


class EventProducer:
    """Produces from asyncio: `await send(...)` returns once the broker acknowledged the record.

    Delivery reports are served by `poll(0)` on the event loop itself while sends are in flight,
    not by a background thread: a thread would need the GIL back from the busy loop to resolve a
    future, and CPython hands it over only every switch interval (5 ms), which showed up as a
    ~4.5 ms median on every write (bench/write_api.py).
    """

    # While sends are in flight a pump polls every millisecond (the loop's timer resolution), and
    # every send polls too, so under load deliveries are served as requests arrive. Spinning on
    # sleep(0) instead was tried: it halved idle latency but burned the CPU the broker needs.
    POLL_INTERVAL_S = 0.001

    def __init__(self, settings: Settings, topology: Topology, **overrides: Any) -> None:
        self._settings = settings
        self._topology = topology
        self._producer = Producer(producer_config(settings, **overrides))
        self._inflight = 0
        self._wake: asyncio.Event | None = None
        self._pump: asyncio.Task[None] | None = None

    async def send_event(self, event: Event, timeout_s: float | None = None) -> tuple[int, int]:
        topic = self._settings.topic(topic_of(self._topology, event))
        return await self.send(topic, partition_key(event), encode(event), timeout_s=timeout_s,
                               partition=explicit_partition(event))

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   headers: list[tuple[str, bytes]] | None = None, timeout_s: float | None = None,
                   partition: int | None = None) -> tuple[int, int]:
        """(partition, offset) once acknowledged; KafkaException, BufferError or TimeoutError if not."""
        fut = self._produce(topic, key, value, headers, partition)
        self._producer.poll(0)  # serves deliveries of earlier sends: free under load
        self._inflight += 1
        self._start_pump()
        try:
            if timeout_s is None:
                return await fut
            return await asyncio.wait_for(fut, timeout_s)
        finally:
            self._inflight -= 1

    async def send_all(self, records: Iterable[tuple[str, bytes | None, bytes | None, int | None]]) -> list[tuple[int, int]]:
        """Produce (topic, key, value, partition or None) records in this order, so one key's
        records keep it, and return their (partition, offset) once the broker acknowledged all.
        A batch larger than librdkafka's local queue waits for room instead of failing halfway."""
        futures = []
        for topic, key, value, partition in records:
            while True:
                try:
                    futures.append(self._produce(topic, key, value, None, partition))
                    break
                except BufferError:  # librdkafka's local queue is full: wait for deliveries to drain it
                    self._producer.poll(0)
                    await asyncio.sleep(self.POLL_INTERVAL_S)
        if not futures:
            return []
        self._producer.poll(0)
        self._inflight += 1
        self._start_pump()
        try:
            return list(await asyncio.gather(*futures))
        finally:
            self._inflight -= 1

    def _produce(self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]] | None,
                 partition: int | None) -> asyncio.Future[tuple[int, int]]:
        fut: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()

        def delivered(err: KafkaError | None, msg: Message) -> None:  # runs inside poll(), on the loop
            if err is not None:
                _fail(fut, KafkaException(err))
            else:
                _succeed(fut, (msg.partition(), msg.offset()))

        self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=delivered,
                               partition=UNASSIGNED if partition is None else partition)
        return fut

    def _start_pump(self) -> None:
        if self._pump is None or self._pump.done():
            self._wake = asyncio.Event()
            self._pump = asyncio.get_running_loop().create_task(self._run_pump())
        assert self._wake is not None
        self._wake.set()

    async def _run_pump(self) -> None:
        assert self._wake is not None
        while True:
            if self._inflight == 0:
                self._wake.clear()
                await self._wake.wait()
            self._producer.poll(0)
            await asyncio.sleep(self.POLL_INTERVAL_S)

    def close(self, timeout_s: float = 10) -> None:
        if self._pump is not None:
            self._pump.cancel()
        self._producer.flush(timeout_s)


def _succeed(fut: asyncio.Future[tuple[int, int]], value: tuple[int, int]) -> None:
    if not fut.done():
        fut.set_result(value)


def _fail(fut: asyncio.Future[tuple[int, int]], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


def produce_sync(settings: Settings, topology: Topology, events: Iterable[Event], timeout_s: float = 30) -> int:
    """Produce events and wait until all are acknowledged; returns how many were sent."""
    producer = Producer(producer_config(settings))
    errors: list[KafkaError] = []
    count = 0
    for event in events:
        topic = settings.topic(topic_of(topology, event))
        partition = explicit_partition(event)
        producer.produce(topic, value=encode(event), key=partition_key(event),
                         partition=UNASSIGNED if partition is None else partition,
                         on_delivery=lambda err, _msg: errors.append(err) if err else None)
        producer.poll(0)
        count += 1
    remaining = producer.flush(timeout_s)
    if remaining or errors:
        raise KafkaException(errors[0] if errors else KafkaError(KafkaError._MSG_TIMED_OUT))
    return count
