"""confluent-kafka producer for everything outside faust: idempotent, acks=all, awaitable."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from pipeline.events import Event, encode
from pipeline.routing import partition_key, topic_of
from pipeline.settings import Settings
from pipeline.topology import Topology


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
    """Produces from asyncio: `await send(...)` returns once the broker acknowledged the record."""

    def __init__(self, settings: Settings, topology: Topology, **overrides: Any) -> None:
        self._settings = settings
        self._topology = topology
        self._producer = Producer(producer_config(settings, **overrides))
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-producer-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    async def send_event(self, event: Event, timeout_s: float | None = None) -> tuple[int, int]:
        topic = self._settings.topic(topic_of(self._topology, event))
        return await self.send(topic, partition_key(event), encode(event), timeout_s=timeout_s)

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   headers: list[tuple[str, bytes]] | None = None, timeout_s: float | None = None) -> tuple[int, int]:
        """(partition, offset) once acknowledged; KafkaException, BufferError or TimeoutError if not."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[int, int]] = loop.create_future()

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                loop.call_soon_threadsafe(_fail, fut, KafkaException(err))
            else:
                loop.call_soon_threadsafe(_succeed, fut, (msg.partition(), msg.offset()))

        self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=delivered)
        if timeout_s is None:
            return await fut
        return await asyncio.wait_for(fut, timeout_s)

    def close(self, timeout_s: float = 10) -> None:
        self._producer.flush(timeout_s)
        self._stop.set()
        self._poller.join(timeout=2)


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
        producer.produce(topic, value=encode(event), key=partition_key(event),
                         on_delivery=lambda err, _msg: errors.append(err) if err else None)
        producer.poll(0)
        count += 1
    remaining = producer.flush(timeout_s)
    if remaining or errors:
        raise KafkaException(errors[0] if errors else KafkaError(KafkaError._MSG_TIMED_OUT))
    return count
