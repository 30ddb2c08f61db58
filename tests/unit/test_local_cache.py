"""The API's in-process cache in front of Redis: entries live ttl_s, and the size is bounded."""

from hypothesis import given
from hypothesis import strategies as st

from adapters.hot_cache import LocalCache


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
