"""The API's in-process cache in front of Redis: entries live ttl_s, and the size is bounded."""

from collections import OrderedDict

from hypothesis import given
from hypothesis import strategies as st

from adapters.hot_cache import DecodedViewers, LocalCache
from pipeline.visibility import Viewer


def test_entries_expire_after_the_ttl():
    cache: LocalCache[int, str] = LocalCache(ttl_s=2.0, max_entries=10)
    cache.put_many({1: "a"}, now=100.0)
    assert cache.get_many([1, 2], now=101.9) == ({1: "a"}, [2])
    assert cache.get_many([1], now=102.0) == ({}, [1])


@given(st.lists(st.integers(0, 50), max_size=300), st.integers(1, 20))
def test_size_is_bounded_and_recent_entries_stay(keys, bound):
    cache: LocalCache[int, int] = LocalCache(ttl_s=60.0, max_entries=bound)
    for i, k in enumerate(keys):
        cache.put_many({k: i}, now=0.0)
    found, _ = cache.get_many(range(51), now=1.0)
    assert len(found) <= bound
    if keys:
        assert found.get(keys[-1]) == len(keys) - 1, "the newest write is kept with its value"


# -- decoded viewers (adapters/hot_cache.DecodedViewers) ----------------------------------------

def _viewer(uid: int, n: int) -> Viewer:
    return Viewer(uid, frozenset(range(1000, 1000 + n)), frozenset(), frozenset())


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 40), st.booleans()), max_size=300),
       st.integers(1, 120))
def test_decoded_viewers_stay_within_their_id_budget_and_drop_the_least_recently_used(ops, budget):
    cache = DecodedViewers(budget)
    model: OrderedDict[int, Viewer] = OrderedDict()  # what an unbounded LRU would hold, in use order
    for uid, n, read in ops:
        if read:
            got = cache.get(uid)
            if got is not None:
                assert got[1] == model[uid], "a kept viewer is the one last put"
                model.move_to_end(uid)
            continue
        viewer = _viewer(uid, n)
        cache.put(uid, f"raw{uid}:{n}", viewer)
        model.pop(uid, None)
        model[uid] = viewer
        assert cache.ids <= budget
    kept = [u for u in model if u in cache]
    assert cache.ids == sum(DecodedViewers.size(model[u]) for u in kept) <= budget
    # The kept ones are the most recently used that fit: every dropped viewer was used before
    # every kept one (or was too large to keep at all).
    order = list(model)
    dropped = [u for u in order if u not in kept and DecodedViewers.size(model[u]) <= budget]
    if kept and dropped:
        assert max(order.index(u) for u in dropped) < min(order.index(u) for u in kept)


def test_readers_coming_back_in_turn_find_their_viewers():
    # 3,000 readers of 30 followees each, read in turn (the benchmark's pattern): all fit the budget.
    cache = DecodedViewers()
    for _round in range(2):
        hits = 0
        for uid in range(3000):
            if cache.get(uid) is not None:
                hits += 1
            else:
                cache.put(uid, "raw", _viewer(uid, 30))
    assert hits == 3000
