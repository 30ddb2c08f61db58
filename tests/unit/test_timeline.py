"""Timeline merge and cursor paging (pure)."""

from hypothesis import given
from hypothesis import strategies as st

from pipeline.timeline import merge_newest, page

id_lists = st.lists(st.lists(st.integers(min_value=1, max_value=10**6), max_size=40), max_size=8)


@given(id_lists, st.integers(min_value=1, max_value=100))
def test_merge_is_the_newest_distinct_ids(lists, limit):
    newest_first = [sorted(set(xs), reverse=True) for xs in lists]
    expected = sorted({x for xs in lists for x in xs}, reverse=True)[:limit]
    assert merge_newest(newest_first, limit) == expected


@given(st.lists(st.integers(min_value=1, max_value=10**6), unique=True), st.integers(1, 50),
       st.none() | st.integers(1, 10**6), st.none() | st.integers(1, 10**6))
def test_page_respects_cursors(ids, limit, max_id, since_id):
    ids = sorted(ids, reverse=True)
    got = page(ids, limit, max_id, since_id)
    assert len(got) <= limit
    assert got == sorted(got, reverse=True)
    assert all((max_id is None or i <= max_id) and (since_id is None or i > since_id) for i in got)
    wanted = [i for i in ids if (max_id is None or i <= max_id) and (since_id is None or i > since_id)]
    assert got == wanted[:limit]


@given(st.lists(st.integers(min_value=1, max_value=10**6), unique=True, max_size=200), st.integers(1, 30))
def test_walking_next_max_id_visits_every_entry_once(ids, limit):
    ids = sorted(ids, reverse=True)
    seen, cursor = [], None
    while True:
        got = page(ids, limit, cursor, None)
        if not got:
            break
        seen += got
        cursor = got[-1] - 1
    assert seen == ids


members = st.lists(st.integers(min_value=1, max_value=10**6).map(str) | st.just("-"), max_size=60)


@given(members)
def test_newest_first_is_the_distinct_ids_without_the_sentinel(ms):
    from pipeline.timeline import newest_first

    got = newest_first(ms, "-")
    assert got == sorted({int(m) for m in ms if m != "-"}, reverse=True)
    assert len(got) == len(set(got))


@given(members, st.lists(st.integers(min_value=1, max_value=10**6), max_size=60), st.integers(0, 50))
def test_merged_list_keeps_the_newest_cap_distinct_ids_oldest_first(ms, ids, cap):
    from pipeline.timeline import merged_oldest_first

    got = merged_oldest_first(ms, ids, cap, "-")
    union = {int(m) for m in ms if m != "-"} | set(ids)
    assert got == sorted(union)[len(union) - min(cap, len(union)):]
    assert got == sorted(set(got)) and len(got) <= cap
