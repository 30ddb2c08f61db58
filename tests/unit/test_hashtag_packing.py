"""Hashtag observations packed per partition of trending.hashtags (pipeline/engagement.py) and
counted by the trending agent (agents/trending.py, apply): each observation lands on the partition
its tag's key maps to, in order, in records the contracts accept, and a tracker fed packed records
counts exactly what one fed observation by observation counts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.trending import apply
from aiokafka.partitioner import DefaultPartitioner
from pipeline.engagement import PACK_MAX_OBSERVATIONS, hashtag_observations, pack_observations
from pipeline.events import Contracts, Event, encode
from pipeline.model import Tweet
from pipeline.routing import explicit_partition, partition_for, partition_key
from pipeline.trending import TrendingConfig, TrendingTracker

C = Contracts()
MAX_EVENT_BYTES = 65536
PACKED = frozenset({"hashtags.observed", "hashtag.observed"})
T0 = 1_700_000_000.0


def test_keyed_events_take_the_partitioners_choice():
    like = Event(1, "like.created", 1, 0, 42, {"tweet_id": "7"})
    assert explicit_partition(like) is None


def test_partition_for_is_kafkas_murmur2():
    # Kafka's own test vectors (UtilsTest.testMurmur2), as non-negative ints.
    vectors = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
               b"a-little-bit-longer-string": -1486304829, b"abc": 479470107,
               b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971}
    for key, h in vectors.items():
        assert partition_for(key, 2**31 - 1) == (h & 0x7FFFFFFF) % (2**31 - 1)


@given(key=st.binary(min_size=1, max_size=64), n=st.integers(1, 64))
def test_partition_for_matches_the_producers_partitioner(key, n):
    """faust (aiokafka) places a keyed record where partition_for says."""
    partitions = list(range(n))
    assert partition_for(key, n) == DefaultPartitioner()(key, partitions, partitions)


TAGS = st.sampled_from(["worldcup", "starling", "été", "x" * 280, "日本" * 140, "a", "b", "c", "d"])
OBSERVATION = st.fixed_dictionaries(
    {"tag": TAGS, "tweet_id": st.integers(1, 2**63 - 1).map(str), "author_id": st.integers(1, 2**63 - 1).map(str),
     "at": st.integers(0, 2**53 - 1), "present": st.booleans()},
    optional={"region": st.sampled_from(["FR", "US", "x" * 64])},
)


@settings(max_examples=60, deadline=None)
@given(observations=st.lists(st.tuples(st.integers(1, 2**63 - 1), OBSERVATION), max_size=1500),
       partitions=st.integers(1, 12))
def test_packing_keeps_each_partitions_observations_in_order_in_valid_records(observations, partitions):
    records = pack_observations(observations, partitions)
    by_partition: dict[int, list[dict]] = {}
    for r in records:
        p = r.data["partition"]
        assert 0 <= p < partitions
        assert 1 <= len(r.data["observations"]) <= PACK_MAX_OBSERVATIONS
        assert all(partition_for(o["tag"].encode(), partitions) == p for o in r.data["observations"])
        assert partition_key(r) == str(p).encode() and explicit_partition(r) == p
        raw = encode(r)
        assert len(raw) <= MAX_EVENT_BYTES
        assert C.decode(raw, PACKED, MAX_EVENT_BYTES) == r
        by_partition.setdefault(p, []).extend(r.data["observations"])
    for p in range(partitions):
        expected = [o for _id, o in observations if partition_for(o["tag"].encode(), partitions) == p]
        assert by_partition.get(p, []) == expected
    # The same batch packs the same records (a replay re-produces identical ones).
    assert pack_observations(observations, partitions) == records


def test_hashtags_of_a_tweet_count_once_with_its_author_region_and_time():
    t = Tweet(tweet_id=11, author_id=5, text="#Été #ete #WorldCup #worldcup #worldcup", reply_to=None,
              quote_of=None, created_at=1_790_000_000_123)
    rt = Tweet(tweet_id=12, author_id=6, text="", reply_to=None, quote_of=None, created_at=1,
               retweet_of=11)
    got = hashtag_observations([(t, True, 0, 901), (rt, True, 0, 902)], {5: "FR"})
    assert [(source, o["tag"]) for source, o in got] == [(901, "été"), (901, "ete"), (901, "worldcup")]
    assert all(o["author_id"] == "5" and o["at"] == t.created_at and o["region"] == "FR" and o["present"]
               for _s, o in got)


@settings(max_examples=40, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from([None, "FR"]),
                              st.integers(1, 8), st.integers(1, 30), st.floats(0, 600), st.booleans()),
                    max_size=80),
       partitions=st.integers(1, 4))
def test_packed_records_count_what_single_observations_count(ops, partitions):
    """A tracker fed the packed records (and one fed retired one-tag records) ends where a tracker
    fed each observation ends."""
    direct, packed, legacy = (TrendingTracker(TrendingConfig(), T0) for _ in range(3))
    observations = []
    for tag, region, author, tweet, dt, present in ops:
        at = T0 - 300 + dt
        (direct.observe if present else direct.remove)(tag, region, author, tweet, at)
        o = {"tag": tag, "tweet_id": str(tweet), "author_id": str(author), "at": int(at * 1000), "present": present}
        if region:
            o["region"] = region
        observations.append((1, o))
        data = {"tag": tag, "tweet_id": str(tweet), "present": present, **({"region": region} if region else {})}
        assert apply(legacy, Event(1, "hashtag.observed", 1, int(at * 1000), author, data)) == 1
    counted = sum(apply(packed, r) for r in pack_observations(observations, partitions))
    assert counted == len(ops)
    for tr in (direct, packed, legacy):
        tr.advance(T0)
    for tag in "abcd":
        for region in (None, "FR"):
            for window in ("5m", "1h"):
                want = direct.stats(tag, region, window)
                for tr in (packed, legacy):
                    got = tr.stats(tag, region, window)
                    assert (got is None) == (want is None)
                    if want is not None:
                        assert (got.count, got.tweets, got.authors) == (want.count, want.tweets, want.authors)
