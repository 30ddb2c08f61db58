"""Values of a new row's INSERT (adapters/cassandra_store._set): nothing Cassandra would store as
a tombstone (a null cell, an empty non-frozen collection) is sent; every real value is."""

from cassandra.query import UNSET_VALUE
from hypothesis import given
from hypothesis import strategies as st

from adapters.cassandra_store import _set


def test_null_and_empty_collections_are_left_unset():
    assert _set(None) is UNSET_VALUE
    assert _set([]) is UNSET_VALUE
    assert _set({}) is UNSET_VALUE


@given(st.one_of(st.integers(), st.text(), st.floats(allow_nan=False), st.booleans(),
                 st.lists(st.text(), min_size=1), st.dictionaries(st.text(), st.floats(allow_nan=False), min_size=1)))
def test_every_real_value_is_sent_as_it_is(value):
    # 0, "" and False are values, not absences: only None and empty collections are left unset.
    assert _set(value) is value
