"""The fan-out's appends packed piece by piece (adapters/resp.py) are what hiredis packs."""

import hiredis
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.resp import evalsha_lists

lists = st.lists(st.tuples(st.integers(1, 10**18).map(lambda i: f"hl:{i}"),
                           st.lists(st.integers(1, 2**63 - 1) | st.sampled_from([1, 9, 10, 99, 100]), min_size=1,
                                    max_size=12)), min_size=1, max_size=40)


@settings(max_examples=200)
@given(lists, st.integers(1, 7), st.integers(1, 30))
def test_packed_calls_are_hiredis_byte_for_byte(groups, keys_per_call, ids_per_call):
    keys = [k for k, _ in groups]
    sizes = np.array([len(ids) for _, ids in groups], dtype=np.int64)
    ids = np.array([i for _, ids in groups for i in ids], dtype=np.int64)
    got = evalsha_lists("a" * 40, keys, [800, 64], sizes, ids, keys_per_call, ids_per_call)
    expected, first = [], 0
    while first < len(groups):  # the same cut: keys_per_call lists, their ids within ids_per_call, one at least
        last, total = first, 0
        while last < len(groups) and last - first < keys_per_call and (last == first or total + len(groups[last][1]) <= ids_per_call):
            total += len(groups[last][1])
            last += 1
        args = [x for _, ids in groups[first:last] for x in (len(ids), *ids)]
        expected.append(hiredis.pack_command(("EVALSHA", "a" * 40, last - first, *keys[first:last], 800, 64, *args)))
        first = last
    assert got == expected
