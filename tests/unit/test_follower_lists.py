"""The fan-out worker's follower-list cache (pure, hypothesis)."""

from hypothesis import given
from hypothesis import strategies as st

from pipeline.fanout import FollowerLists

ops = st.lists(st.tuples(st.sampled_from(["put", "get", "batch"]), st.integers(1, 8), st.sampled_from(["g1", "g2", "g3"]),
                         st.lists(st.integers(1, 10**6), max_size=12)), max_size=60)


@given(ops, st.integers(0, 40))
def test_a_list_is_served_only_under_the_generation_it_was_cached_at_and_within_budget(steps, budget):
    cache = FollowerLists(budget)
    model: dict[int, tuple[str, list[int]]] = {}  # what was last put, if it can still be cached
    for op, author, gen, followers in steps:
        if op == "batch":
            # What the runtime does before a batch: a spent cache is started afresh.
            if cache.spent:
                cache, model = FollowerLists(budget), {}
        elif op == "put":
            assert cache.ids(cache.put(author, gen, followers)).tolist() == followers
            model[author] = (gen, followers)
        else:
            got = cache.get(author, gen)
            if got is not None:
                # Never a list from another generation, never another author's, never stale.
                assert model[author][0] == gen and cache.ids(got).tolist() == model[author][1]
        assert cache.size <= budget
    # Whatever is still held is the latest put of its author, under its generation.
    held = {a: cache.ids(got).tolist() for a, (gen, _f) in model.items() if (got := cache.get(a, gen)) is not None}
    assert held == {a: f for a, (_g, f) in model.items() if a in held}
    assert sum(map(len, held.values())) == cache.size


def test_least_recently_used_lists_go_first():
    cache = FollowerLists(budget=6)
    cache.put(1, "a", [10, 11])
    cache.put(2, "a", [20, 21])
    cache.put(3, "a", [30, 31])
    assert cache.get(1, "a") is not None  # 1 is now the most recently used
    cache.put(4, "a", [40, 41])  # over budget: 2 goes
    assert cache.get(2, "a") is None
    assert [cache.ids(cache.get(a, "a")).tolist() for a in (1, 3, 4)] == [[10, 11], [30, 31], [40, 41]]
    assert cache.get(1, "b") is None, "a new generation misses"
    cache.put(5, "a", list(range(7)))  # larger than the whole budget: returned, not kept
    assert cache.get(5, "a") is None and cache.size == 6



def test_an_index_filled_by_dropped_lists_is_spent_and_what_a_batch_took_stays_valid():
    cache = FollowerLists(budget=4)
    cache.put(1, "a", [10, 11, 12])
    taken = cache.put(2, "a", [20, 21])  # over budget: 1's list goes, its users stay indexed
    assert cache.get(1, "a") is None and cache.size == 2
    assert len(cache.users) == 5 and cache.spent, "more users indexed than the budget holds ids"
    fresh = FollowerLists(budget=4)  # the next batch's (agents/runtime.Runtime.follower_lists)
    assert fresh.ids(fresh.put(2, "a", [21, 30])).tolist() == [21, 30] and not fresh.spent
    assert cache.ids(taken).tolist() == [20, 21], "a batch in flight keeps reading its own"
