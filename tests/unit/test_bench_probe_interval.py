"""bench.common.probe_interval: how often a delivery probe polls the API for its tweet."""

from hypothesis import given
from hypothesis import strategies as st

from bench.common import probe_interval


def polls_until(latency_s: float, share: float) -> int:
    """Polls a probe sends until its tweet, visible after latency_s, is seen (requests take no time)."""
    t, n = 0.0, 0
    while True:
        n += 1
        if t >= latency_s:
            return n
        t += probe_interval(t, share)


def test_share_zero_polls_at_the_least_interval_throughout():
    assert {probe_interval(w, 0.0) for w in (0.0, 0.5, 3.0, 60.0)} == {0.02}


def test_a_late_tweet_costs_far_fewer_polls_than_at_a_fixed_interval():
    assert polls_until(0.3, 0.05) == polls_until(0.3, 0.0)  # quick tweets: as often as before
    assert polls_until(10.0, 0.0) > 5 * polls_until(10.0, 0.05)


@given(st.floats(0, 120), st.floats(0, 0.5))
def test_the_interval_stays_within_its_bounds_and_share(waited, share):
    interval = probe_interval(waited, share)
    assert 0.02 <= interval <= 0.25
    # Late by at most the share of the wait, or the least interval.
    assert interval <= max(0.02, share * waited) + 1e-12


@given(st.floats(0, 60), st.floats(0, 60), st.floats(0, 0.5))
def test_a_longer_wait_never_polls_more_often(a, b, share):
    low, high = sorted((a, b))
    assert probe_interval(low, share) <= probe_interval(high, share)
