"""The worker's consumer (adapters/faust_transport.py) on the real Kafka: its fetches wait at most
the topology's fetch_max_wait_ms (not faust's fixed 1,500 ms), and it still consumes."""

import dataclasses

import pytest
from aiokafka import TopicPartition
from confluent_kafka import Producer

from adapters.faust_transport import FAUST_FETCH_MAX_WAIT_MS, Transport
from agents.app import build_app
from pipeline.topology import load_topology


async def test_the_worker_consumer_fetches_with_the_topologys_wait(stack, topic):
    topology = load_topology(stack.topology_path)
    topology = dataclasses.replace(topology, tunables=dataclasses.replace(topology.tunables, fetch_max_wait_ms=250))
    app, _rt = build_app(stack, topology)
    assert isinstance(app.transport, Transport)
    consumer = app.consumer._thread._create_worker_consumer(app.transport)
    assert 250 != FAUST_FETCH_MAX_WAIT_MS
    await consumer.start()
    try:
        assert consumer._fetcher._fetch_max_wait_ms == 250  # what the fetch requests carry
        producer = Producer({"bootstrap.servers": stack.kafka_bootstrap})
        producer.produce(topic, key=b"k", value=b"through the short wait", partition=0)
        assert producer.flush(30) == 0
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.seek_to_beginning(TopicPartition(topic, 0))
        record = await consumer.getone()
        assert (record.key, record.value) == (b"k", b"through the short wait")
    finally:
        await consumer.stop()


def test_a_wait_of_zero_is_refused(stack):
    app, _rt = build_app(stack, load_topology(stack.topology_path))
    with pytest.raises(ValueError, match="fetch_max_wait_ms"):
        Transport(app.conf.broker_consumer, app, 0)
