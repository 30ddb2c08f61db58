"""Snowflake ids: unique, time-ordered, safe when the clock steps back."""

from hypothesis import given
from hypothesis import strategies as st

from pipeline.snowflake import MAX_SEQUENCE, STARLING_EPOCH_MS, Snowflake, lowest_id_at, timestamp_ms

T0 = STARLING_EPOCH_MS + 10**9


def test_ids_carry_their_time_and_worker():
    sf = Snowflake(5)
    i = sf.next_id(T0)
    assert timestamp_ms(i) == T0
    assert (i >> 12) & 0x3FF == 5
    assert i < 2**63


@given(st.lists(st.integers(min_value=-5000, max_value=5000), min_size=1, max_size=300))
def test_strictly_increasing_whatever_the_clock_does(steps):
    sf = Snowflake(1)
    now, last = T0, -1
    for step in steps:
        now += step  # the clock may jump forwards or backwards
        i = sf.next_id(now)
        assert i > last
        last = i


def test_sequence_overflow_borrows_the_next_millisecond():
    sf = Snowflake(0)
    ids = [sf.next_id(T0) for _ in range(MAX_SEQUENCE + 2)]
    assert len(set(ids)) == len(ids)
    assert timestamp_ms(ids[-1]) == T0 + 1


def test_different_workers_never_collide():
    a, b = Snowflake(1), Snowflake(2)
    assert not {a.next_id(T0) for _ in range(100)} & {b.next_id(T0) for _ in range(100)}


def test_lowest_id_at_bounds_ids_of_that_time():
    sf = Snowflake(7)
    assert lowest_id_at(T0) <= sf.next_id(T0) < lowest_id_at(T0 + 1)
