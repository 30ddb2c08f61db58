"""Exact counts from facts (pipeline/counts.py): a model of the engagement agent that replays,
duplicates, reorders and crashes between its two writes, against the ground truth."""

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.counts import Counts, FactChange, FactState, apply_changes, ground_truth, wins

TWEETS = (1, 2)


@st.composite
def event_logs(draw):
    """A partition's log: likes/unlikes, retweets/undos, replies appearing and being deleted, with
    event times that may go backwards (an unlike arriving before its like) and duplicates."""
    n = draw(st.integers(0, 60))
    log = []
    for offset in range(n):
        if log and draw(st.booleans()) and draw(st.booleans()):
            dup = draw(st.sampled_from(log))  # a producer retry: same event, new offset
            log.append(FactChange(dup.tweet_id, dup.kind, dup.member, dup.present, dup.ts_us, 0, offset))
            continue
        log.append(FactChange(
            tweet_id=draw(st.sampled_from(TWEETS)), kind=draw(st.sampled_from(("likes", "retweets", "replies"))),
            member=draw(st.integers(1, 4)), present=draw(st.booleans()), ts_us=draw(st.integers(0, 30)) * 1000,
            partition=0, offset=offset))
    return log


class Agent:
    """The engagement agent's storage protocol: count rows then facts, each written whole."""

    def __init__(self) -> None:
        self.facts: dict[tuple[int, str, int], FactState] = {}
        self.counts: dict[int, Counts] = {}

    def process(self, batch, crash_after_counts: bool) -> None:
        keys = {(c.tweet_id, c.kind, c.member) for c in batch}
        before = {k: self.facts[k] for k in keys if k in self.facts}
        counts, written = apply_changes(batch, before, {t: self.counts[t] for t in TWEETS if t in self.counts})
        self.counts.update(counts)
        if crash_after_counts:
            return
        for k, s in written.items():  # Cassandra keeps the last write by timestamp
            if wins(s, self.facts.get(k)):
                self.facts[k] = s


@settings(max_examples=300, deadline=None)
@given(event_logs(), st.data())
def test_counts_equal_the_ground_truth_after_crashes_and_replays(log, data):
    agent = Agent()
    committed = 0
    while committed < len(log):
        size = data.draw(st.integers(1, 10))
        batch = log[committed:committed + size]
        crash = data.draw(st.sampled_from(["none", "after_counts", "before_commit"]))
        agent.process(batch, crash_after_counts=crash == "after_counts")
        if crash == "none":
            committed += len(batch)
        # On a crash the offsets were not committed: the same events come again (perhaps batched
        # differently); a later replay of an already committed prefix is harmless too.
        if crash != "none" and data.draw(st.booleans()):
            committed = max(0, committed - data.draw(st.integers(0, 3)))
    truth = ground_truth(log)
    for tweet in TWEETS:
        expected = truth.get(tweet, {})
        got = agent.counts.get(tweet, Counts())
        for kind in ("likes", "retweets", "replies"):
            assert got.get(kind) == expected.get(kind, 0), (tweet, kind)


def test_an_unlike_before_its_like_leaves_it_unliked():
    unlike = FactChange(1, "likes", 7, False, 2000, 0, 0)
    like = FactChange(1, "likes", 7, True, 1000, 0, 1)
    counts, facts = apply_changes([unlike], {}, {})
    assert counts[1].get("likes") == 0 and facts[(1, "likes", 7)] == FactState(False, 2000)
    counts, facts = apply_changes([like], facts, counts)
    assert counts[1].get("likes") == 0 and facts == {}, "the older like loses and writes nothing"


def test_same_timestamp_like_wins_as_in_cassandra():
    assert wins(FactState(True, 5), FactState(False, 5))
    assert not wins(FactState(False, 5), FactState(True, 5))


def test_a_replayed_batch_is_not_counted_twice():
    likes = [FactChange(1, "likes", u, True, 1000 + u, 3, 10 + u) for u in range(5)]
    counts, _ = apply_changes(likes, {}, {})
    assert counts[1].get("likes") == 5 and (counts[1].partition, counts[1].offset) == (3, 14)
    # Crash before the facts were written: same events, same (empty) stored state.
    again, _ = apply_changes(likes, {}, counts)
    assert again == {}, "every event is at or below the guard: nothing to write"
