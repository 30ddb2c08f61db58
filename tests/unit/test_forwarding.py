"""Packing forwarded events per partition of tweets.moderated, and unpacking them (pure)."""

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.events import Contracts, Event, encode
from pipeline.forwarding import PACKED, PUSHED, pack, to_push, unpacked, was_pushed
from pipeline.routing import explicit_partition, partition_for, partition_key

CONTRACTS = Contracts()


def _event(i, author, kind, text):
    data = {"tweet_id": str(10**12 + i)}
    if kind == "tweet.created":
        data["text"] = text
    return Event(10**15 + i, kind, 1, 1_800_000_000_000 + i, author, data)


events = st.lists(st.tuples(st.integers(1, 40), st.sampled_from(["tweet.created", "tweet.deleted"]),
                            st.text(max_size=280)), max_size=60).map(
    lambda rows: [_event(i, 10**9 + a, kind, text) for i, (a, kind, text) in enumerate(rows)])


@settings(max_examples=200)
@given(events, st.integers(1, 8), st.integers(300, 5000), st.integers(1, 20))
def test_packing_keeps_every_event_whole_in_its_partition_and_order(evs, partitions, max_bytes, max_events):
    records = pack(evs, partitions, max_bytes, max_events)
    assert unpacked([]) == []
    by_partition = {}
    for r in records:
        assert r.type == PACKED and explicit_partition(r) == r.data["partition"]
        assert partition_key(r) == str(r.data["partition"]).encode()
        inner = unpacked([r])
        assert 1 <= len(inner) <= max_events
        assert len(encode(r)) <= max_bytes or len(inner) == 1, "within the size, or one event alone"
        assert (r.event_id, r.actor, r.occurred_at) == (inner[0].event_id, inner[0].actor, inner[0].occurred_at)
        by_partition.setdefault(r.data["partition"], []).extend(inner)
    for p, inner in by_partition.items():
        assert all(partition_for(partition_key(e), partitions) == p for e in inner), "each where its key maps"
    for p in range(partitions):
        assert by_partition.get(p, []) == [e for e in evs if partition_for(partition_key(e), partitions) == p], \
            "every event once, whole, in the batch's order"
    assert pack(evs, partitions, max_bytes, max_events) == records, "a replay packs the same"


def test_a_packed_record_passes_its_contract_and_unpacks_to_the_events():
    evs = [_event(i, 10**9 + i % 3, "tweet.created", f"hello #{i}") for i in range(7)] + [_event(9, 10**9, "tweet.deleted", "")]
    (record,) = pack(evs, 1)
    decoded = CONTRACTS.decode(encode(record), frozenset({PACKED}), 65536)
    assert unpacked([decoded]) == evs
    other = _event(20, 5, "tweet.deleted", "")
    assert unpacked([other, decoded]) == [other, *evs], "a single event passes through as it is"
    assert orjson.loads(encode(record))["data"]["events"][0] == evs[0].to_json()


def test_pushed_tweets_are_listed_in_their_record_and_marked_when_unpacked():
    created = [_event(i, 10**9 + i % 2, "tweet.created", f"t{i}") for i in range(4)]
    deleted = _event(9, 10**9, "tweet.deleted", "")
    pushed = {created[0].id_field("tweet_id"), created[3].id_field("tweet_id"), deleted.id_field("tweet_id")}
    records = pack([*created, deleted], 2, pushed=pushed)
    for r in records:
        decoded = CONTRACTS.decode(encode(r), frozenset({PACKED}), 65536)
        assert decoded.data.get(PUSHED, []) == [e.data["tweet_id"] for e in unpacked([decoded])
                                                if e.type == "tweet.created" and e.id_field("tweet_id") in pushed]
    out = unpacked(records)
    assert sorted(e.id_field("tweet_id") for e in out if was_pushed(e)) == sorted(
        e.id_field("tweet_id") for e in (created[0], created[3])), "only tweet.created events are marked"
    assert [e.data.get(PUSHED) for e in out if not was_pushed(e)] == [None] * 3, "the others as they were"
    assert not any(was_pushed(e) for e in unpacked(pack(created, 2))), "nothing pushed: no mark"


def _mod(i, author, tweet_index, delivered):
    return Event(10**15 + i, "tweet.moderated", 1, 1_800_000_000_000 + i, author,
                 {"tweet_id": str(10**12 + tweet_index), "author_id": str(author), "delivered": delivered})


def test_moderation_pushes_the_tweets_it_judged_that_stay_delivered_to_the_batch_end():
    a, b = 10**9 + 1, 10**9 + 2
    kept, deleted_later, restored = (_event(0, a, "tweet.created", "x"), _event(1, a, "tweet.created", "y"),
                                     _event(2, b, "tweet.created", "z"))
    batch = [kept, deleted_later, restored, _event(1, a, "tweet.deleted", "")]
    judged = {kept.id_field("tweet_id"), deleted_later.id_field("tweet_id")}  # `restored` came from an override
    assert to_push(batch, judged) == [(a, kept.id_field("tweet_id"))]
    withdrawn = [kept, _mod(5, a, 0, False)]
    assert to_push(withdrawn, judged) == [], "withdrawn later in the batch"
    assert to_push([kept, kept], judged) == [(a, kept.id_field("tweet_id"))], "once"
