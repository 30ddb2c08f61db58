"""Hybrid fan-out policy and exact follower counts under replays (pure, hypothesis)."""

from array import array

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import resp
from pipeline.fanout import Mode, Policy, UserIndex, appends, fetch_groups, spread, stable_order
from pipeline.graph import FollowerCount, apply_follow_counts

POLICY = Policy(push_all_below=10_000, push_active_below=100_000, activity_window_s=604_800)


def test_bands():
    assert [POLICY.mode(n) for n in (0, 9_999, 10_000, 99_999, 100_000, 10**9)] == [
        Mode.PUSH_ALL, Mode.PUSH_ALL, Mode.PUSH_ACTIVE, Mode.PUSH_ACTIVE, Mode.PULL, Mode.PULL]


@given(st.integers(0, 10**8), st.integers(0, 10**8))
def test_modes_are_monotonic_in_followers(a, b):
    order = [Mode.PUSH_ALL, Mode.PUSH_ACTIVE, Mode.PULL]
    lo, hi = sorted((a, b))
    assert order.index(POLICY.mode(lo)) <= order.index(POLICY.mode(hi))


def lands(mode, last_read, now, window):
    """The rule, one follower at a time: in the last-read set (a built timeline), and in the middle
    band also read within the window."""
    return last_read is not None and (mode is Mode.PUSH_ALL or now - last_read <= window)


batches = st.lists(st.tuples(st.integers(1, 10**12), st.sampled_from([Mode.PUSH_ALL, Mode.PUSH_ACTIVE]),
                             st.lists(st.integers(1, 40), unique=True, max_size=30)), max_size=12,
                   unique_by=lambda t: t[0])


def dense(pushed, index):
    """The batch with its follower lists as the worker holds them: indices into a UserIndex."""
    return [(entry, mode, index.indices(followers)) for entry, mode, followers in pushed]


@settings(max_examples=300)
@given(batches, st.dictionaries(st.integers(1, 40), st.floats(0, 10**7)), st.floats(0, 10**7),
       st.lists(st.integers(41, 60)))
def test_appends_are_the_rule_applied_to_every_follower_grouped_by_timeline(pushed, last_reads, now, known):
    index = UserIndex()
    index.indices(known)  # users the worker's index held before this batch's
    rows = spread(dense(pushed, index), len(index))
    readers = index.ids[rows.readers].tolist()
    assert sorted(readers) == sorted({f for _e, _m, fs in pushed for f in fs}), "each follower looked up once"
    seen = np.array([last_reads.get(r, np.nan) for r in readers], dtype=np.float64)
    got = appends(rows, seen, now, 3600)
    expected = {}
    for entry, mode, followers in pushed:
        for f in followers:
            if lands(mode, last_reads.get(f), now, 3600):
                expected.setdefault(f, []).append(entry)
    timelines = index.ids[got.readers].tolist()
    assert sorted(timelines) == sorted(expected), "one group per timeline that gets anything"
    groups = dict(zip(timelines, (g.tolist() for g in np.split(got.entries, np.cumsum(got.sizes)[:-1]))))
    assert got.sizes.tolist() == [len(expected[r]) for r in timelines]
    assert groups == {r: sorted(es) for r, es in expected.items()}, "each oldest first"


def test_appends_of_nothing():
    index = UserIndex()
    got = appends(spread([], 0), np.empty(0), 0.0, 3600)
    assert got.readers.tolist() == [] and got.sizes.tolist() == [] and got.entries.tolist() == []
    rows = spread(dense([(5, Mode.PUSH_ALL, array("q", [3, 1]))], index), len(index))  # cached lists are arrays
    assert appends(rows, np.array([np.nan, np.nan]), 0.0, 3600).readers.tolist() == []
    got = appends(rows, np.array([np.nan, 10.0]), 20.0, 3600)
    assert (index.ids[got.readers].tolist(), got.entries.tolist()) == ([1], [5])


@given(st.lists(st.integers(0, 2**32 - 1)), st.integers(0, 2**16))
def test_stable_order_is_numpys_stable_argsort(keys, few):
    for ks in (np.array(keys, dtype=np.int64), np.array(keys, dtype=np.int64) % (few + 1)):
        assert stable_order(ks).tolist() == np.argsort(ks, kind="stable").tolist()


@given(st.lists(st.lists(st.integers(-2**63, 2**63 - 1), max_size=20), max_size=6))
def test_user_index_gives_each_user_one_index_and_its_wire_encoding(lists):
    index = UserIndex()
    seen = {}
    for users in lists:
        got = index.indices(users).tolist()
        for user, at in zip(users, got):
            assert seen.setdefault(user, at) == at, "a user keeps its index"
        assert index.ids[got].tolist() == users
    assert sorted(seen.values()) == list(range(len(index))), "dense, in the order first seen"
    assert index.encoded == [resp.bulk(u) for u in index.ids.tolist()]


@given(st.dictionaries(st.integers(1, 10**6), st.integers(0, 300), max_size=80), st.integers(1, 500), st.integers(1, 10))
def test_fetch_groups_cover_every_author_once_within_their_bounds(sizes, rows, most):
    groups = fetch_groups(sizes, rows, most)
    assert sorted(a for g in groups for a in g) == sorted(sizes), "every author exactly once"
    for g in groups:
        assert 1 <= len(g) <= most
        assert len(g) == 1 or sum(sizes[a] for a in g) <= rows, "a page of rows, or one author alone"
    # Greedy in size order: no two neighbouring groups could have been one.
    for g, h in zip(groups, groups[1:]):
        assert len(g) + len(h) > most or sum(sizes[a] for a in g + h) > rows


def test_fetch_groups_put_short_lists_together_and_long_ones_alone():
    sizes = {1: 10, 2: 20, 3: 30, 4: 5000, 5: 40, 6: 12000}
    assert fetch_groups(sizes, 100, 100) == [[1, 2, 3, 5], [4], [6]]
    assert fetch_groups(sizes, 5000, 2) == [[1, 2], [3, 5], [4], [6]]


# -- exact counts: a model of the agent with crashes and replays ------------------------------

edges = st.lists(st.tuples(st.integers(1, 6), st.booleans()), min_size=1, max_size=40)


def truth(changes):
    followers = set()
    for follower, present in changes:
        (followers.add if present else followers.discard)(follower)
    return len(followers)


@settings(max_examples=300)
@given(edges, st.data())
def test_counts_stay_exact_through_crashes_between_count_and_edge_writes(changes, data):
    """Process the log in batches; a crash may hit after the count write and before the edge
    writes, and then the batch is replayed from the last committed offset."""
    followee, partition = 100, 0
    log = [((f, followee, present, i), partition, i) for i, (f, present) in enumerate(changes)]
    stored_edges: set[tuple[int, int]] = set()
    counts: dict[int, FollowerCount] = {}
    committed = 0
    while committed < len(log):
        end = data.draw(st.integers(committed + 1, len(log)))
        batch = log[committed:end]
        counts.update(apply_follow_counts(batch, stored_edges, counts))  # counts written first
        crash = data.draw(st.sampled_from(["none", "before_edges", "before_commit"]))
        if crash == "before_edges":
            continue  # the batch is replayed from the last committed offset
        for (f, fe, present, _), _, _ in batch:
            (stored_edges.add if present else stored_edges.discard)((f, fe))
        if crash == "before_commit":
            continue
        committed = end
    assert counts[followee].followers == truth(changes)
    assert counts[followee].followers == len(stored_edges)


def test_timeline_changes_per_edge_kind():
    from pipeline.graph import timeline_changes

    changes = timeline_changes({
        "follow": [(1, 2, True, 0), (1, 3, False, 0)],
        "mute": [(1, 4, True, 0), (1, 4, False, 0)],
        "block": [(1, 5, True, 0), (6, 1, False, 0)],
    })
    assert changes == [
        ("backfill", 1, 2), ("remove", 1, 3),
        ("remove", 1, 4), ("backfill_if_following", 1, 4),
        ("remove", 1, 5), ("remove", 5, 1),
        ("backfill_if_following", 6, 1), ("backfill_if_following", 1, 6),
    ]
