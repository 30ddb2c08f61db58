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
