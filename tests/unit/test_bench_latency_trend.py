"""bench.common.latency_trend: whether delivery latency grew over a run at a steady rate."""

from hypothesis import given
from hypothesis import strategies as st

from bench.common import latency_trend


def test_a_flat_run_has_no_slope():
    samples = [(t * 0.2, 0.3) for t in range(150)]
    trend = latency_trend(samples)
    assert trend == {"slope_ms_per_s": 0.0, "p50_ms_by_third": [300.0, 300.0, 300.0]}


def test_a_growing_backlog_shows_as_its_slope_and_thirds():
    # Offered at 1.25x capacity: each second sent adds 0.25 s of backlog.
    samples = [(t * 0.1, 0.2 + 0.25 * t * 0.1) for t in range(300)]
    trend = latency_trend(samples)
    assert trend is not None
    assert trend["slope_ms_per_s"] == 250.0
    first, middle, last = trend["p50_ms_by_third"]
    assert first < middle < last


def test_the_order_samples_arrive_in_does_not_matter():
    samples = [(t * 0.5, 0.1 * (t % 7)) for t in range(40)]
    assert latency_trend(samples) == latency_trend(list(reversed(samples)))


def test_too_few_samples_give_none():
    assert latency_trend([(0.0, 0.1)] * 5) is None


@given(st.lists(st.tuples(st.floats(0, 60), st.floats(0, 10)), min_size=6, max_size=200))
def test_thirds_lie_within_the_samples(samples):
    trend = latency_trend(samples)
    assert trend is not None
    lows, highs = min(lat for _, lat in samples) * 1000, max(lat for _, lat in samples) * 1000
    assert all(lows - 0.05 <= p <= highs + 0.05 for p in trend["p50_ms_by_third"])  # rounded to 0.1 ms
