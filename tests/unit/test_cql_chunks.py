"""adapters.cql.request_chunks: how a write's rows, grouped by partition, become requests."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from adapters.cql import PARTITION_BATCH_MAX, request_chunks

# Groups of rows (group number, row number), each group on one of three replica sets.
groups_strategy = st.lists(st.tuples(st.integers(1, 2 * PARTITION_BATCH_MAX + 5), st.integers(0, 2)), max_size=40)


def build(spec: list[tuple[int, int]]) -> tuple[list[list[tuple[int, int]]], dict[int, int]]:
    groups = [[(g, i) for i in range(n)] for g, (n, _r) in enumerate(spec)]
    return groups, {g: r for g, (_n, r) in enumerate(spec)}


@given(groups_strategy, st.integers(1, 12))
def test_every_row_once_in_order_within_limits(spec, per_request):
    groups, replica_of = build(spec)
    chunks = request_chunks(groups, lambda rows: replica_of[rows[0][0]], per_request)
    rows = [row for chunk in chunks for row in chunk]
    assert sorted(rows) == sorted(row for g in groups for row in g)  # each row exactly once
    for chunk in chunks:
        assert 1 <= len(chunk) <= PARTITION_BATCH_MAX
        members = {g for g, _i in chunk}
        assert len({replica_of[g] for g in members}) == 1, "one replica set a request"
        assert len(members) <= max(per_request, 1)
        for g in members:  # a group's rows keep their order
            mine = [i for h, i in chunk if h == g]
            assert mine == sorted(mine)
    # A group that fits in a request is never split across requests.
    for g in groups:
        if len(g) <= PARTITION_BATCH_MAX:
            assert sum(1 for chunk in chunks if any(h == g[0][0] for h, _i in chunk)) == 1


@given(groups_strategy)
def test_one_partition_a_request_without_grouping(spec):
    groups, _replicas = build(spec)
    for chunks in (request_chunks(groups, None, 8), request_chunks(groups, lambda rows: 0, 1)):
        assert all(len({g for g, _i in chunk}) == 1 for chunk in chunks)
        assert sum(map(len, chunks)) == sum(map(len, groups))


def test_small_groups_on_one_replica_set_share_requests():
    groups = [[(g, 0), (g, 1)] for g in range(20)]
    chunks = request_chunks(groups, lambda rows: "node", 8)
    assert [len({g for g, _i in c}) for c in chunks] == [8, 8, 4]


@given(st.lists(st.tuples(st.integers(1, 6), st.integers(0, 1), st.integers(1, 400)), max_size=40),
       st.integers(1, 12), st.integers(100, 2000))
def test_requests_of_several_partitions_stay_within_the_bytes(spec, per_request, most_bytes):
    # Rows of `weight` bytes each; a request of several groups holds at most most_bytes of them,
    # a group heavier than that goes alone, and every row is still sent once, in its group's order.
    groups = [[(g, i, w) for i in range(n)] for g, (n, _r, w) in enumerate(spec)]
    replica_of = {g: r for g, (_n, r, _w) in enumerate(spec)}
    chunks = request_chunks(groups, lambda rows: replica_of[rows[0][0]], per_request,
                            size=lambda row: row[2], most_bytes=most_bytes)
    assert sorted(row for chunk in chunks for row in chunk) == sorted(row for g in groups for row in g)
    for chunk in chunks:
        members = {g for g, _i, _w in chunk}
        assert len(members) == 1 or sum(w for _g, _i, w in chunk) <= most_bytes
        for g in members:
            mine = [i for h, i, _w in chunk if h == g]
            assert mine == sorted(mine) and len(mine) == len(groups[g])  # whole groups (none is over the row cap)


def test_value_bytes_counts_texts_by_their_utf8_bytes_and_containers_by_their_members():
    from adapters.cql import value_bytes

    assert value_bytes(None) == 0
    assert value_bytes("abc") == 3 + 8 and value_bytes("é") == 2 + 8
    assert value_bytes(b"xyz") == 3 + 8
    assert value_bytes(7) == 16
    assert value_bytes(["ab", "c"]) == (2 + 8) + (1 + 8) + 8
    assert value_bytes({"k": 1.5}) == (1 + 8) + 16 + 8
