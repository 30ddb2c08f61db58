"""Hybrid fan-out policy and exact follower counts under replays (pure, hypothesis)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.fanout import Mode, Policy, active_readers, fetch_groups, push_targets
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


@given(st.lists(st.tuples(st.integers(1, 10**6), st.none() | st.floats(0, 10**7)), max_size=50), st.floats(0, 10**7))
def test_active_readers_are_exactly_those_within_the_window(rows, now):
    followers = [f for f, _ in rows]
    seen = [s for _, s in rows]
    got = active_readers(followers, seen, now, 3600)
    assert got == [f for f, s in rows if s is not None and now - s <= 3600]


@given(st.lists(st.tuples(st.integers(1, 10**6), st.none() | st.floats(0, 10**7)), max_size=50), st.floats(0, 10**7))
def test_push_targets_skip_only_followers_without_a_timeline_below_the_middle_band(rows, now):
    rows = list(dict(rows).items())  # a follower once, as in a follower list
    followers = [f for f, _ in rows]
    seen = dict(rows)
    everyone = push_targets(Mode.PUSH_ALL, followers, seen, now, 3600)
    active = push_targets(Mode.PUSH_ACTIVE, followers, seen, now, 3600)
    assert everyone == [f for f, s in rows if s is not None], "every follower in the last-read set, in order"
    assert active == active_readers(followers, [s for _, s in rows], now, 3600)
    assert set(active) <= set(everyone)


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
