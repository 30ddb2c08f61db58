"""Each service is the real server: a Kafka round trip, a CQL write and read, a Redis round trip."""

import secrets
import time

from cassandra.cluster import Cluster
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from adapters import cql


def test_kafka_produce_then_consume(stack):
    topic = stack.topic("ingest.users")
    payload = secrets.token_bytes(16)
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap, "enable.idempotence": True})
    delivered = []
    producer.produce(topic, key=b"k", value=payload, on_delivery=lambda err, msg: delivered.append((err, msg)))
    assert producer.flush(30) == 0
    err, msg = delivered[0]
    assert err is None
    consumer = Consumer({"bootstrap.servers": stack.kafka_bootstrap, "group.id": f"probe-{secrets.token_hex(4)}",
                         "enable.auto.commit": False})
    from confluent_kafka import TopicPartition
    consumer.assign([TopicPartition(topic, msg.partition(), msg.offset())])
    try:
        got = None
        deadline = time.monotonic() + 30
        while got is None and time.monotonic() < deadline:
            m = consumer.poll(1.0)
            if m is not None and m.error() is None:
                got = m
        assert got is not None and got.value() == payload and got.key() == b"k"
    finally:
        consumer.close()


def test_topics_have_the_partitions_of_topology(stack):
    from pipeline.topology import load_topology

    topology = load_topology(stack.topology_path)
    md = AdminClient({"bootstrap.servers": stack.kafka_bootstrap}).list_topics(timeout=10)
    for name, spec in topology.topics.items():
        assert len(md.topics[stack.topic(name)].partitions) == spec.partitions


def test_cql_write_then_read(stack):
    cluster = Cluster(list(stack.cassandra_hosts), port=stack.cassandra_port, protocol_version=5)
    try:
        session = cluster.connect(stack.keyspace)
        session.execute("INSERT INTO users_by_handle (handle_folded, user_id) VALUES (%s, %s)", ("probe", 7))
        row = session.execute("SELECT user_id FROM users_by_handle WHERE handle_folded = %s", ("probe",)).one()
        assert row.user_id == 7
        version = session.execute("SELECT release_version FROM system.local").one().release_version
        assert version.startswith("5.0")
    finally:
        cluster.shutdown()


async def test_redis_round_trip(redis_client):
    key = f"probe:{secrets.token_hex(4)}"
    await redis_client.set(key, "v", ex=60)
    assert await redis_client.get(key) == "v"
    assert (await redis_client.info("server"))["redis_version"].startswith("7.")


async def test_async_cql_bridge_pages_through_everything(stack, cass):
    # 2,500 followers read back in pages of 1,000 through the asyncio bridge.
    user = 10**12 + secrets.randbelow(10**6)
    await cass.apply_follows((10**13 + i, user, True, 1_800_000_000_000) for i in range(2500))
    pages = [p async for p in cass.follower_pages(user, 1000)]
    assert [len(p) for p in pages] == [1000, 1000, 500]
    assert sorted(f for p in pages for f in p) == [10**13 + i for i in range(2500)]
    rows = await cql.execute(cass.session, "SELECT count(*) AS n FROM followers_by_user WHERE user_id = %s", (user,))
    assert rows[0]["n"] == 2500
