"""The producer behind the worker's derived events (adapters/kafka.EventProducer.send_all), on the
real Kafka: records go out in the order given (one key's records stay in order on their
partition), each acknowledgement names the record's real place, and an explicit partition is kept."""

import secrets

from adapters.kafka import EventProducer, read_to_end
from pipeline.topology import load_topology


async def test_send_all_keeps_the_order_and_reports_where_each_record_landed(stack, topic):
    producer = EventProducer(stack, load_topology(stack.topology_path))
    key = f"order-{secrets.token_hex(4)}".encode()
    records = [(topic, key, f"v{i}".encode(), None) for i in range(300)]
    explicit = (topic, key + b"-explicit", b"placed", 2)
    try:
        assert await producer.send_all([]) == []
        acks = await producer.send_all([*records, explicit])
    finally:
        producer.close()
    keyed, placed = acks[:300], acks[300]
    assert len({partition for partition, _ in keyed}) == 1, "one key, one partition"
    offsets = [offset for _, offset in keyed]
    assert offsets == sorted(offsets) and len(set(offsets)) == 300
    assert placed[0] == 2
    read = {(m.key(), m.partition(), m.offset()): m.value() for m in read_to_end(stack.kafka_bootstrap, topic)
            if m.key() in (key, explicit[1])}
    assert [read[(key, keyed[0][0], o)] for o in offsets] == [f"v{i}".encode() for i in range(300)]
    assert read[(explicit[1], 2, placed[1])] == b"placed"


async def test_a_batch_larger_than_the_local_queue_waits_for_room_and_keeps_its_order(stack, topic):
    producer = EventProducer(stack, load_topology(stack.topology_path), **{"queue.buffering.max.messages": 10})
    key = f"full-{secrets.token_hex(4)}".encode()
    try:
        acks = await producer.send_all([(topic, key, f"v{i}".encode(), None) for i in range(100)])
    finally:
        producer.close()
    offsets = [offset for _, offset in acks]
    assert len(acks) == 100 and offsets == sorted(offsets) and len(set(offsets)) == 100
    read = [m.value() for m in read_to_end(stack.kafka_bootstrap, topic) if m.key() == key]
    assert read == [f"v{i}".encode() for i in range(100)]
