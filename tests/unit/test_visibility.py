"""The visibility rule (pure): protected accounts, blocks both ways, mutes in lists only."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.visibility import Viewer, can_see_author, shows_in_lists

V = Viewer(user_id=1, following=frozenset({2, 3}), hidden=frozenset({3, 4, 5}), blocked_either_way=frozenset({4, 5}))


@pytest.mark.parametrize("author, protected, see, listed", [
    (1, True, True, True),      # oneself, protected or not
    (2, True, True, True),      # a followed protected account
    (6, True, False, False),    # a protected account the viewer does not follow
    (6, False, True, True),     # a public stranger
    (3, False, True, False),    # followed but muted: reachable by lookup, absent from lists
    (4, False, False, False),   # blocked either way
])
def test_table(author, protected, see, listed):
    assert can_see_author(V, author, protected) is see
    assert shows_in_lists(V, author, protected) is listed


@given(st.integers(1, 20), st.booleans(), st.frozensets(st.integers(1, 20)), st.frozensets(st.integers(1, 20)))
def test_protected_never_leaks_to_non_followers(author, protected, following, blocked):
    viewer = Viewer(user_id=99, following=following, hidden=blocked, blocked_either_way=blocked)
    if protected and author not in following:
        assert not can_see_author(viewer, author, protected)
    if author in blocked:
        assert not shows_in_lists(viewer, author, protected)
    assert shows_in_lists(viewer, author, protected) <= can_see_author(viewer, author, protected)
