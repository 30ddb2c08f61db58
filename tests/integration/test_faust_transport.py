"""The worker's consumer (adapters/faust_transport.py) on the real Kafka: its fetches wait at most
the topology's fetch_max_wait_ms (not faust's fixed 1,500 ms), and it still consumes."""

import dataclasses
import secrets

import pytest
from aiokafka import TopicPartition
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from adapters.faust_transport import FAUST_FETCH_MAX_WAIT_MS, Transport
from agents.app import build_app
from pipeline.topology import load_topology
from tests.e2e.helpers import eventually


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


async def test_two_workers_get_the_same_partitions_of_every_topic_of_one_partition_count(stack):
    """Co-partitioned: a worker holding partition n of ingest.tweets holds partition n of
    tweets.moderated, whatever lies between them (aiokafka's round robin, faust's choice for an app
    without tables, dealt a 3-partition topic's partitions in between and shifted the rest)."""
    tag = secrets.token_hex(3)
    names = [stack.topic(f"test-copart-{tag}-{s}") for s in ("a", "b", "c")]  # in this order by name
    counts = dict(zip(names, (6, 3, 6)))
    admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})
    for f in admin.create_topics([NewTopic(n, num_partitions=c, replication_factor=1) for n, c in counts.items()]).values():
        f.result(30)
    topology = load_topology(stack.topology_path)
    group = f"test-copart-{secrets.token_hex(4)}"
    consumers = []
    try:
        for _ in range(2):
            app, _rt = build_app(dataclasses.replace(stack, app_id=group), topology)
            consumer = app.consumer._thread._create_worker_consumer(app.transport)
            await consumer.start()
            consumers.append(consumer)
            consumer.subscribe(names)

        async def assignments():
            for c in consumers:  # a consumer joins and syncs while it is asked for records
                await c.getmany(timeout_ms=100)
            return [c.assignment() for c in consumers]

        got = await eventually(assignments, lambda a: all(a) and sum(len(x) for x in a) == 15, timeout_s=60,
                               what="both consumers assigned every partition")
        for assigned in got:
            first, third = ({tp.partition for tp in assigned if tp.topic == n} for n in (names[0], names[2]))
            assert first == third and len(first) == 3, got
    finally:
        for c in consumers:
            await c.stop()
        for f in admin.delete_topics(names).values():
            f.result(30)
