"""The API's in-process cache in front of Redis: entries live ttl_s, the size is bounded, and an
announced change is never undone by a fetch it overtook. Two lookups made together (a page's
tweets and counts) fetch only what their local copies miss."""

import asyncio
import time
from collections import OrderedDict

from hypothesis import given
from hypothesis import strategies as st

from adapters.hot_cache import DecodedViewers, LocalCache, _both
from pipeline.visibility import Viewer


def _put(cache: LocalCache, items: dict, now: float) -> None:
    cache.fetched(list(items), items, cache.fetching(list(items)), now)


def test_entries_expire_after_the_ttl():
    cache: LocalCache[int, str] = LocalCache(ttl_s=2.0, max_entries=10)
    _put(cache, {1: "a"}, now=100.0)
    assert cache.get_many([1, 2], now=101.9) == ({1: "a"}, [2])
    assert cache.get_many([1], now=102.0) == ({}, [1])


@given(st.lists(st.integers(0, 50), max_size=300), st.integers(1, 20))
def test_size_is_bounded_and_recent_entries_stay(keys, bound):
    cache: LocalCache[int, int] = LocalCache(ttl_s=60.0, max_entries=bound)
    for i, k in enumerate(keys):
        _put(cache, {k: i}, now=0.0)
    found, _ = cache.get_many(range(51), now=1.0)
    assert len(found) <= bound
    if keys:
        assert found.get(keys[-1]) == len(keys) - 1, "the newest write is kept with its value"


def test_a_key_announced_during_its_fetch_is_not_kept_from_that_fetch():
    cache: LocalCache[int, str] = LocalCache(ttl_s=60.0, max_entries=10)
    epoch = cache.fetching([1, 2])
    cache.forget(1)  # the announcement overtook the reply: "old" may predate the change
    cache.fetched([1, 2], {1: "old", 2: "b"}, epoch, now=0.0)
    assert cache.get_many([1, 2], now=1.0) == ({2: "b"}, [1])
    _put(cache, {1: "new"}, now=1.0)  # a fetch begun after it is kept
    assert cache.get_many([1], now=2.0) == ({1: "new"}, [])


def test_nothing_fetched_across_forget_all_is_kept():
    cache: LocalCache[int, str] = LocalCache(ttl_s=60.0, max_entries=10)
    _put(cache, {1: "a"}, now=0.0)
    epoch = cache.fetching([2])
    cache.forget_all()
    cache.fetched([2], {2: "b"}, epoch, now=0.0)
    assert cache.get_many([1, 2], now=1.0) == ({}, [1, 2])


# Operations on keys 0-3: begin a fetch, end the oldest open one (it read the value current when it
# began), announce a change (the value moves on), forget everything.
_OPS = st.lists(st.tuples(st.sampled_from(["begin", "end", "change", "forget_all"]), st.integers(0, 3)),
                max_size=60)


@given(_OPS)
def test_an_entry_is_never_older_than_the_last_announcement(ops):
    """Model: a key's value is a version counter bumped by each announced change; a fetch returns
    the version current when it began (the worst case: its reply raced every later change).
    Whatever the interleaving, what the cache answers is the current version."""
    cache: LocalCache[int, int] = LocalCache(ttl_s=60.0, max_entries=10)
    version = [0, 0, 0, 0]
    open_fetches: list[tuple[int, int, int]] = []  # (key, version read, epoch)
    for op, k in ops:
        if op == "begin":
            open_fetches.append((k, version[k], cache.fetching([k])))
        elif op == "end" and open_fetches:
            key, seen, epoch = open_fetches.pop(0)
            cache.fetched([key], {key: seen}, epoch, now=0.0)
        elif op == "change":
            version[k] += 1
            cache.forget(k)
        elif op == "forget_all":
            cache.forget_all()
        found, _ = cache.get_many(range(4), now=1.0)
        assert all(found[key] == version[key] for key in found), (found, version)


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


def _loader(calls: list, source: dict, cache: LocalCache | None = None, announce: int | None = None):
    async def load(ids):
        calls.append(sorted(ids))
        if cache is not None and announce is not None:
            cache.forget(announce)  # a change announced while this fetch is in flight
        return {i: source[i] for i in ids if i in source}
    return load


def test_two_lookups_fetch_only_what_their_local_copies_miss():
    tweets: LocalCache[int, str] = LocalCache(ttl_s=60.0, max_entries=100)
    counts: LocalCache[int, int] = LocalCache(ttl_s=60.0, max_entries=100)
    t_calls: list = []
    c_calls: list = []
    t_load = _loader(t_calls, {1: "a", 2: "b"})
    c_load = _loader(c_calls, {1: 10, 2: 20, 3: 30})

    # Both miss: both fetched (3 is no tweet: absent, and asked again next time).
    assert asyncio.run(_both(tweets, [1, 2, 3], t_load, counts, [1, 2, 3], c_load)) == (
        {1: "a", 2: "b"}, {1: 10, 2: 20, 3: 30})
    assert t_calls == [[1, 2, 3]] and c_calls == [[1, 2, 3]]
    # The same again: only the tweet that was absent is asked for; the counts are all local.
    assert asyncio.run(_both(tweets, [1, 2, 3], t_load, counts, [1, 2, 3], c_load)) == (
        {1: "a", 2: "b"}, {1: 10, 2: 20, 3: 30})
    assert t_calls == [[1, 2, 3], [3]] and c_calls == [[1, 2, 3]]
    # All local: nothing fetched.
    assert asyncio.run(_both(tweets, [2, 1], t_load, counts, [2], c_load)) == ({2: "b", 1: "a"}, {2: 20})
    assert len(t_calls) == 2 and len(c_calls) == 1


def test_two_lookups_keep_the_announcement_rule():
    tweets: LocalCache[int, str] = LocalCache(ttl_s=60.0, max_entries=100)
    counts: LocalCache[int, int] = LocalCache(ttl_s=60.0, max_entries=100)
    t_calls: list = []
    c_calls: list = []
    # Counts of tweet 1 change while both fetches are in flight: the answer is served, not kept.
    found = asyncio.run(_both(tweets, [1], _loader(t_calls, {1: "a"}), counts, [1],
                              _loader(c_calls, {1: 10}, cache=counts, announce=1)))
    assert found == ({1: "a"}, {1: 10})
    assert tweets.get_many([1], now=time.monotonic()) == ({1: "a"}, [])
    assert counts.get_many([1], now=time.monotonic()) == ({}, [1])
