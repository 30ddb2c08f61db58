"""Rate-limit verdicts (pure): limits, remaining, reset at the window's end."""

from hypothesis import given
from hypothesis import strategies as st

from adapters.ratelimit import decide
from pipeline.topology import RateLimit

LIMIT = RateLimit(per_user=10, per_ip=50)


def test_within_and_over_the_user_limit():
    ok = decide(LIMIT, user_count=10, ip_count=10, now_s=1000.5, window_s=900)
    assert ok.allowed and ok.remaining == 0 and ok.reset_epoch_s == 1800
    over = decide(LIMIT, user_count=11, ip_count=11, now_s=1000.5, window_s=900)
    assert not over.allowed and over.retry_after_s == 800
    assert over.headers()["Retry-After"] == "800" and over.headers()["X-RateLimit-Limit"] == "10"


def test_ip_limit_binds_even_when_the_user_is_fine():
    assert not decide(LIMIT, user_count=1, ip_count=51, now_s=0, window_s=900).allowed


def test_unauthenticated_requests_count_against_the_ip():
    d = decide(LIMIT, user_count=None, ip_count=3, now_s=0, window_s=900)
    assert d.allowed and d.limit == 50 and d.remaining == 47


@given(st.integers(1, 1000), st.integers(1, 1000), st.floats(0, 10**9), st.integers(1, 3600))
def test_exactly_the_first_n_are_allowed(u, ip, now, window):
    d = decide(LIMIT, user_count=u, ip_count=ip, now_s=now, window_s=window)
    assert d.allowed == (u <= LIMIT.per_user and ip <= LIMIT.per_ip)
    assert 0 <= d.remaining <= LIMIT.per_user
    assert d.reset_epoch_s > now and 1 <= d.retry_after_s <= window
