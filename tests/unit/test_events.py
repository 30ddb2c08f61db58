"""Event decoding: every bad input is an InvalidEvent with the right reason, never another error."""

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import InvalidEvent
from pipeline.events import Contracts, Event, Reason, encode
from pipeline.graph import follow_edges
from pipeline.model import Tweet

C = Contracts()
TWEETS = frozenset({"tweet.created"})
MAX = 65536


def envelope(**over):
    doc = {"event_id": "123", "type": "tweet.created", "version": 1, "occurred_at": 1_800_000_000_000,
           "actor": "42", "data": {"tweet_id": "99", "text": "hello #world"}}
    doc.update(over)
    return orjson.dumps(doc)


def test_valid_tweet_decodes():
    e = C.decode(envelope(), TWEETS, MAX)
    assert (e.event_id, e.actor, e.type, e.data["text"]) == (123, 42, "tweet.created", "hello #world")
    t = Tweet.from_event(e)
    assert (t.tweet_id, t.author_id, t.reply_to) == (99, 42, None)


def test_encode_decode_round_trip():
    e = C.decode(envelope(), TWEETS, MAX)
    assert C.decode(encode(e), TWEETS, MAX) == e


@pytest.mark.parametrize("raw, reason", [
    (None, Reason.MALFORMED_JSON),
    (b"{not json", Reason.MALFORMED_JSON),
    (b"\xff\xfe", Reason.MALFORMED_JSON),
    (b"[1,2]", Reason.BAD_ENVELOPE),
    (envelope(event_id=123), Reason.BAD_ENVELOPE),            # ids are strings
    (envelope(actor="-1"), Reason.BAD_ENVELOPE),
    (envelope(extra=1), Reason.BAD_ENVELOPE),
    (envelope(type="poll.created"), Reason.UNKNOWN_TYPE),
    (envelope(version=7), Reason.UNKNOWN_VERSION),
    (envelope(type="follow.created", data={"followee_id": "5"}), Reason.WRONG_TOPIC),
    (envelope(data={"tweet_id": "99"}), Reason.SCHEMA_VIOLATION),
    (envelope(data={"tweet_id": "99", "text": 123}), Reason.SCHEMA_VIOLATION),
    (envelope(data={"tweet_id": "99", "text": "x", "author_id": "1"}), Reason.SCHEMA_VIOLATION),
    (b" " * (MAX + 1), Reason.OVERSIZE),
])
def test_bad_input_gets_its_reason(raw, reason):
    with pytest.raises(InvalidEvent) as info:
        C.decode(raw, TWEETS, MAX)
    assert info.value.reason == reason


def test_schema_violation_names_the_field():
    with pytest.raises(InvalidEvent) as info:
        C.decode(envelope(data={"tweet_id": "99", "text": 5}), TWEETS, MAX)
    assert info.value.detail.startswith("data.text")


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_else(raw):
    try:
        C.decode(raw, TWEETS, MAX)
    except InvalidEvent as exc:
        assert exc.reason in vars(Reason).values()


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                    max_leaves=20))
def test_arbitrary_json_never_raises_anything_else(doc):
    try:
        C.decode(json.dumps(doc).encode(), TWEETS, MAX)
    except InvalidEvent:
        pass


def _follow(etype, actor, followee, ms):
    return Event(event_id=1, type=etype, version=1, occurred_at=ms, actor=actor, data={"followee_id": str(followee)})


def test_follow_edges():
    events = [_follow("follow.created", 1, 2, 10), _follow("follow.removed", 1, 3, 11),
              _follow("follow.created", 4, 4, 12)]
    assert list(follow_edges(events)) == [(1, 2, True, 10), (1, 3, False, 11)]


def test_a_record_decoded_twice_is_validated_once_and_equal():
    """The owner agent and the notification agent decode the same record (pipeline/events.py)."""
    from pipeline.events import Contracts, Event, encode

    contracts = Contracts()
    raw = encode(Event(11, "like.created", 1, 1795000000000, 12, {"tweet_id": "13"}))
    allowed = frozenset({"like.created"})
    first = contracts.decode(raw, allowed, 65536)
    assert contracts.decode(raw, allowed, 65536) is first
    import pytest as _pytest

    from pipeline.errors import InvalidEvent
    with _pytest.raises(InvalidEvent):
        contracts.decode(raw, frozenset({"tweet.created"}), 65536)  # another topic: decided afresh
