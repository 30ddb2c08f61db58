"""Sliding-window trending (pure, hypothesis): windows, dedup, removal, scoring, checkpoints."""

import json
import math
import random
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import TopologyError
from pipeline.trending import (
    DEFAULT_WINDOWS,
    Outcome,
    SnapshotMismatch,
    TrendingConfig,
    TrendingTracker,
    Window,
    score,
)

T0 = 1_700_000_000.0  # an hour boundary plus 800 s: windows do not line up with hours
CONFIG = TrendingConfig()
WINDOWS = ("5m", "1h", "24h")


def tracker(config=CONFIG, now=T0):
    return TrendingTracker(config, now)


def figures(tr, tag, region, window):
    """(count, tweets, authors) of a tag in a window; an untracked tag has none."""
    got = tr.stats(tag, region, window)
    return (0, 0, 0) if got is None else (got.count, got.tweets, got.authors)


def background(tr, start, end, tags, per_s, rng, first_id=1, authors=50_000, regions=("us", "br", None)):
    """Steady traffic: `per_s` tweets a second spread over `tags` with Zipf weights, clock advancing
    every 5 s. Returns the next free tweet id."""
    weights = [1 / (i + 1) for i in range(len(tags))]
    tid, t = first_id, start
    while t < end:
        for tag in rng.choices(tags, weights, k=int(per_s * 5)):
            tr.observe(tag, rng.choice(regions), rng.randrange(authors), tid, t + rng.random() * 5)
            tid += 1
        t += 5
        tr.advance(t)
    return tid


def trending(tr, now, region=None, window="5m"):
    return [e.tag for e in tr.top(region, window, now)]


# -- configuration ------------------------------------------------------------------------------


def test_defaults_round_trip_through_a_mapping():
    raw = CONFIG.to_mapping()
    assert TrendingConfig.from_mapping(json.loads(json.dumps(raw))) == CONFIG
    assert TrendingConfig.from_mapping({}) == CONFIG


def test_the_documented_topology_block_is_the_defaults():
    text = (Path(__file__).parents[2] / "docs" / "TRENDING.md").read_text()
    block = re.search(r"```yaml\n(trending:\n.*?)```", text, re.DOTALL)
    assert block is not None
    assert TrendingConfig.from_mapping(yaml.safe_load(block.group(1))["trending"]) == CONFIG


def test_a_mapping_overrides_and_normalizes():
    cfg = TrendingConfig.from_mapping({
        "min_authors": 7, "prior_count": 2, "never_trend": ["#NSFW", "ＦＯＬＬＯＷＢＡＣＫ", "job"],
        "windows": {"10m": {"length_s": 600, "baseline_s": 7200, "recent_s": 1200, "half_life_s": 300}},
    })
    assert cfg.min_authors == 7 and cfg.prior_count == 2.0 and isinstance(cfg.prior_count, float)
    assert cfg.never_trend == frozenset({"nsfw", "followback", "job"})
    assert cfg.windows == (Window("10m", 600, 7200, 1200, 300),)


W5 = {"length_s": 300, "baseline_s": 3600, "recent_s": 600, "half_life_s": 60}


@pytest.mark.parametrize(("raw", "names"), [
    ({"min_autors": 5}, "tunables.trending.min_autors is not a setting"),
    ({"min_authors": 0}, "tunables.trending.min_authors must be a number >= 1"),
    ({"min_authors": True}, "tunables.trending.min_authors must be an integer"),
    ({"min_authors": 2.5}, "tunables.trending.min_authors must be an integer"),
    ({"bucket_s": "10"}, "tunables.trending.bucket_s must be an integer"),
    ({"prior_count": float("nan")}, "tunables.trending.prior_count must be a number"),
    ({"min_score": -1}, "tunables.trending.min_score must be a number >= 0"),
    ({"detail_s": 3605}, "tunables.trending.detail_s must be a multiple of bucket_s"),
    ({"windows": {}}, "tunables.trending.windows must be a non-empty mapping"),
    ({"windows": {"5m": {"length_s": 300, "baseline_s": 3600, "recent_s": 600}}},
     "tunables.trending.windows.5m.half_life_s must be a positive integer"),
    ({"windows": {"5m": {**W5, "length_s": 305}}}, "tunables.trending.windows.5m.length_s must be a multiple of bucket_s"),
    ({"windows": {"5m": {**W5, "decay": 1}}}, "tunables.trending.windows.5m.decay is not a window setting"),
    ({"windows": {"5m": {**W5, "recent_s": 7200}}}, "tunables.trending.windows.5m.recent_s must be at most baseline_s"),
    ({"windows": {"2h": {**W5, "length_s": 5400}}},
     "tunables.trending.windows.2h.length_s is longer than detail_s, so must be a multiple of summary_s"),
    ({"windows": {"90m": {**W5, "length_s": 5400, "baseline_s": 9000}}}, "tunables.trending.windows.90m.length_s"),
    ({"never_trend": "nsfw"}, "tunables.trending.never_trend must be a list of tags"),
    ({"min_count": 11, "min_authors": 5, "author_cap": 2}, "tunables.trending.min_count can never be reached"),
    ([], "tunables.trending must be a mapping"),
])
def test_bad_settings_are_named(raw, names):
    with pytest.raises(TopologyError, match=names.replace(".", r"\.")):
        TrendingConfig.from_mapping(raw)


def test_the_constructor_checks_too():
    with pytest.raises(TopologyError, match="author_cap"):
        TrendingConfig(author_cap=0)
    with pytest.raises(TopologyError, match="windows"):
        TrendingConfig(windows=(DEFAULT_WINDOWS[0], DEFAULT_WINDOWS[0]))


# -- the score ----------------------------------------------------------------------------------


@given(st.integers(0, 10**6), st.floats(0, 10**6), st.integers(0, 1000))
def test_score_grows_with_count_and_falls_with_the_baseline(count, expected, more):
    s = score(count, expected, 1.0, 50.0)
    assert s >= 0 and math.isfinite(s)
    assert score(count + more, expected, 1.0, 50.0) >= s
    assert score(count, expected + more, 1.0, 50.0) <= s
    if count <= expected + 1.0:
        assert s == 0


@given(st.integers(0, 10**4), st.floats(0, 10**4), st.floats(0, 10), st.floats(0, 10))
def test_a_baseline_resting_on_little_history_lowers_the_score(count, expected, noise, more):
    assert score(count, expected, 0.5, 50.0, noise + more) <= score(count, expected, 0.5, 50.0, noise)
    assert score(count, expected, 0.5, 50.0, math.inf) == 0.0


def test_big_tags_rank_by_relative_growth():
    """A 3-sigma wobble of a tag at 30,000 a window is nothing, +30% is not yet a trend, doubling
    is; a fresh burst of ten on a quiet tag is about as much as a huge tag doubling."""
    p, sat, bar = CONFIG.prior_count, CONFIG.saturation_count, CONFIG.min_score
    assert score(30_520, 30_000, p, sat) < 0.5
    assert score(39_000, 30_000, p, sat) < bar < score(60_000, 30_000, p, sat)
    assert bar < score(10, 0, p, sat) < 2 * bar
    assert score(6, 3, p, sat) < bar  # twice a small baseline: chance


# -- counting -----------------------------------------------------------------------------------


def test_a_tweet_counts_once_however_often_it_is_delivered():
    tr = tracker()
    assert tr.observe("python", "us", 7, 100, T0) is Outcome.COUNTED
    assert tr.observe("python", "us", 7, 100, T0) is Outcome.DUPLICATE
    assert tr.observe("python", "br", 8, 100, T0 + 3) is Outcome.DUPLICATE  # same id: same tweet
    assert figures(tr, "python", None, "5m") == (1, 1, 1)
    assert figures(tr, "python", "br", "5m") == (0, 0, 0)


def test_each_author_counts_at_most_author_cap_times():
    tr = tracker()
    for i in range(10):
        tr.observe("spam", "us", 1, i, T0)
    tr.observe("spam", "us", 2, 99, T0)
    assert figures(tr, "spam", "us", "5m") == (CONFIG.author_cap + 1, 11, 2)


def test_late_future_and_never_trend_observations_are_refused():
    cfg = TrendingConfig(never_trend=frozenset({"nsfw"}))
    tr = tracker(cfg)
    assert tr.observe("a", None, 1, 1, T0 - cfg.detail_s - 1) is Outcome.LATE
    assert tr.observe("a", None, 1, 2, math.nan) is Outcome.LATE
    assert tr.observe("a", None, 1, 3, T0 + cfg.max_future_s + 1) is Outcome.FUTURE
    assert tr.observe("nsfw", None, 1, 4, T0) is Outcome.IGNORED
    assert tr.stats("nsfw", None, "5m") is None and tr.stats("a", None, "5m") is None


def test_a_late_tweet_counts_in_the_windows_it_is_still_inside():
    tr = tracker()
    tr.advance(T0 + 1000)
    assert tr.observe("a", "us", 1, 1, T0 + 100) is Outcome.COUNTED  # 15 min late
    assert figures(tr, "a", "us", "5m") == (0, 0, 0)
    assert figures(tr, "a", "us", "1h") == (1, 1, 1)


def test_windows_slide_and_old_tweets_roll_into_hourly_summaries():
    tr = tracker()
    for i in range(6):
        tr.observe("a", "us", i, i, T0 + 5)
    tr.advance(T0 + 299)
    assert [figures(tr, "a", "us", w) for w in WINDOWS] == [(6, 6, 6)] * 3
    tr.advance(T0 + 310)  # the bucket of T0 + 5 left the 5 min window
    assert [figures(tr, "a", "us", w) for w in WINDOWS] == [(0, 0, 0), (6, 6, 6), (6, 6, 6)]
    tr.advance(T0 + 3610)  # ... and the detail horizon: now in an hourly summary
    assert [figures(tr, "a", "us", w) for w in WINDOWS] == [(0, 0, 0), (0, 0, 0), (6, 6, 6)]
    tr.advance(T0 + 86_400 + 3600)  # out of the 24 h window, and forgotten
    assert tr.stats("a", "us", "24h") is None
    assert tr.footprint().tags == 0


def test_the_clock_never_goes_back():
    tr = tracker()
    tr.advance(T0 + 100)
    tr.advance(T0 + 50)
    assert tr.clock == T0 + 100


# -- removal ------------------------------------------------------------------------------------


CAP2 = TrendingConfig(author_cap=2)  # caps above one keep repeat authors in the arithmetic


def test_removal_is_exact_and_idempotent():
    tr = tracker(CAP2)
    for i in range(5):
        tr.observe("a", "us", 1, i, T0)  # one author, five tweets: capped at 2
    tr.observe("a", "us", 2, 10, T0)
    assert tr.remove("a", "us", 1, 0, T0) is True
    assert tr.remove("a", "us", 1, 0, T0) is False
    assert tr.observe("a", "us", 1, 0, T0) is Outcome.REMOVED  # a replay does not bring it back
    assert figures(tr, "a", "us", "5m") == (3, 5, 2)
    for i in range(1, 5):
        tr.remove("a", "us", 1, i, T0)
    assert figures(tr, "a", "us", "5m") == (1, 1, 1)
    assert figures(tr, "a", None, "1h") == (1, 1, 1)


def test_a_removal_that_overtakes_its_tweet_stops_it():
    tr = tracker()
    assert tr.remove("a", "us", 1, 5, T0) is False
    assert tr.observe("a", "us", 1, 5, T0) is Outcome.REMOVED
    assert figures(tr, "a", "us", "5m") == (0, 0, 0)


def test_removal_reaches_tweets_rolled_into_hourly_summaries():
    tr = tracker(CAP2)
    for i in range(4):
        tr.observe("a", "us", 1, i, T0)  # a repeat author: kept in the frozen hour
    for i in range(4, 10):
        tr.observe("a", "us", i, i, T0)  # single tweets: implied by their absence
    tr.advance(T0 + 2 * 3600)
    assert figures(tr, "a", "us", "24h") == (8, 10, 7)
    assert tr.remove("a", "us", 1, 0, T0) and tr.remove("a", "us", 1, 1, T0)
    assert figures(tr, "a", "us", "24h") == (8, 8, 7)  # still two of author 1 left
    assert tr.remove("a", "us", 1, 2, T0) and tr.remove("a", "us", 9, 9, T0)
    assert figures(tr, "a", "us", "24h") == (6, 6, 6)
    assert not tr.remove("a", "us", 9, 9, T0)
    assert figures(tr, "a", None, "24h") == (6, 6, 6)


ops = st.lists(st.tuples(
    st.sampled_from(["observe", "observe", "observe", "remove", "advance"]),
    st.sampled_from(["a", "b"]),
    st.sampled_from(["us", "br", None]),
    st.integers(1, 4),  # author
    st.integers(1, 30),  # tweet id
    st.floats(0, 5000),  # seconds after T0
), max_size=80)


# Pruning forgets tags below min_count, and a tombstone keeps a tag: with min_count 1 only empty
# tags are pruned, so a tracker that saw a removal and one that never saw the tweet compare. A
# tweet from the future is refused only until the clock catches up: none are, here.
LOOSE = TrendingConfig(min_count=1, min_authors=1, max_future_s=10**6)


def tweets_of(ops):
    """Each tweet's (region, author, time): those of its first op, so every delivery agrees."""
    first = {}
    for op, tag, region, author, tid, dt in ops:
        if op != "advance":
            first.setdefault((tag, tid), (region, author, T0 + dt))
    return first


def replay(ops, skip=frozenset(), config=LOOSE, tweets=None, removals=True):
    """Run ops on a fresh tracker, never observing the tweets in `skip`. Removals follow the
    contract the agent keeps: a tweet is removed if it was counted, or if it was not delivered yet
    and is still within the detail horizon (a tombstone); beyond it, remove() assumes the tweet
    counted, so no removal is sent for a tweet never delivered or refused as late. Returns the
    tracker and the tweets whose removal was sent."""
    tweets = tweets_of(ops) if tweets is None else tweets
    tr = tracker(config)
    counted, sent = set(), set()
    for op, tag, _, _, tid, dt in ops:
        if op == "advance":
            tr.advance(T0 + dt)
            continue
        region, author, at = tweets[tag, tid]
        horizon = (int(tr.clock // config.bucket_s) - config.detail_s // config.bucket_s + 1) * config.bucket_s
        if op == "observe" and (tag, tid) not in skip:
            if tr.observe(tag, region, author, tid, at) is Outcome.COUNTED:
                counted.add((tag, tid))
        elif op == "remove" and removals and ((tag, tid) in counted or at >= horizon):
            tr.remove(tag, region, author, tid, at)
            sent.add((tag, tid))
    return tr, sent


@settings(max_examples=300, deadline=None)
@given(ops)
def test_removing_a_tweet_is_as_if_it_never_came(ops):
    """Whatever a tweet's removal meets (still in a window, already folded into a baseline,
    rolled into an hour, or not seen yet), the counts end as if it had never been delivered."""
    with_removals, removed = replay(ops)
    never_sent, _ = replay(ops, skip=removed, removals=False)
    for tag in ("a", "b"):
        for region in ("us", "br", None):
            for window in WINDOWS:
                assert figures(with_removals, tag, region, window) == figures(never_sent, tag, region, window)
                mine, theirs = (tr.stats(tag, region, window) for tr in (with_removals, never_sent))
                if mine is not None and theirs is not None:
                    assert math.isclose(mine.expected, theirs.expected, rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=200, deadline=None)
@given(ops, st.data())
def test_redeliveries_change_nothing(ops, data):
    """At-least-once delivery: any observation may come again, any number of times, later."""
    doubled = list(ops)
    for _ in range(data.draw(st.integers(0, 20))):
        deliveries = [i for i, op in enumerate(doubled) if op[0] == "observe"]
        if deliveries:
            i = data.draw(st.sampled_from(deliveries))
            doubled.insert(data.draw(st.integers(i + 1, len(doubled))), doubled[i])
    tweets = tweets_of(ops)
    (once, _), (twice, _) = replay(ops, tweets=tweets), replay(doubled, tweets=tweets)
    for tag in ("a", "b"):
        for region in ("us", "br", None):
            for window in WINDOWS:
                assert figures(once, tag, region, window) == figures(twice, tag, region, window)


# -- the exact windows against a brute-force model ----------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["us", None]), st.integers(1, 5),
                          st.floats(0, 4000)), max_size=60),
       st.floats(0, 4000), st.integers(1, 3))
def test_exact_windows_count_capped_tweets_and_distinct_authors(tweets, now, cap):
    cfg = TrendingConfig(author_cap=cap, min_count=1, min_authors=1)
    tr = tracker(cfg)
    accepted = []
    for tid, (tag, region, author, dt) in enumerate(sorted(tweets, key=lambda x: x[3])):
        tr.advance(T0 + dt)
        if tr.observe(tag, region, author, tid, T0 + dt) is Outcome.COUNTED:
            accepted.append((tag, region, author, T0 + dt))
    tr.advance(T0 + now)
    clock_bucket = int(tr.clock // cfg.bucket_s)
    for window, length in (("5m", 300), ("1h", 3600)):
        first = (clock_bucket - length // cfg.bucket_s + 1) * cfg.bucket_s
        for tag in ("a", "b"):
            for region in ("us", None):
                inside = [a for tg, rg, a, at in accepted if tg == tag and at >= first
                          and (region is None or rg == region)]
                per_author = {a: inside.count(a) for a in inside}
                want = (sum(min(n, cap) for n in per_author.values()), len(inside), len(per_author))
                assert figures(tr, tag, region, window) == want


# -- trends -------------------------------------------------------------------------------------


STEADY = [f"steady{i}" for i in range(40)]


def warmed(seed=1, minutes=40, per_s=30):
    rng = random.Random(seed)
    tr = tracker()
    next_id = background(tr, T0, T0 + minutes * 60, STEADY, per_s, rng)
    return tr, rng, next_id, T0 + minutes * 60


def test_steady_tags_do_not_trend_however_popular():
    tr, rng, next_id, now = warmed()
    seen = set()
    for _ in range(60):  # another 5 minutes, looking every 5 s
        next_id = background(tr, now, now + 5, STEADY, 30, rng, next_id)
        now += 5
        seen.update(trending(tr, now))
    assert seen == set()


def test_a_burst_trends_within_seconds():
    tr, rng, next_id, now = warmed()
    start, found = now, None
    for second in range(60):
        for j in range(2):  # two new authors a second on a tag never seen
            tr.observe("breaking", "br", 900_000 + 2 * second + j, 10**9 + 2 * second + j, start + second + j / 2)
        next_id = background(tr, now, now + 1, STEADY, 30, rng, next_id)
        now += 1
        if found is None and "breaking" in trending(tr, now):
            found = now - start
    assert found is not None and found <= 15
    top = tr.top(None, "5m", now)[0]
    assert (top.tag, top.count, top.authors) == ("breaking", 120, 120)
    assert len(top.samples) == CONFIG.samples and all(s >= 10**9 for s in top.samples)
    assert "breaking" in trending(tr, now, region="br") and "breaking" not in trending(tr, now, region="us")


def test_three_accounts_cannot_push_a_tag():
    tr, rng, next_id, now = warmed()
    for second in range(300):
        for account in (1, 2, 3):
            tr.observe("buyfollowers", "us", account, 10**9 + 3 * second + account, now + second)
            tr.observe(STEADY[20], "us", account, 2 * 10**9 + 3 * second + account, now + second)
        if second % 5 == 4:
            next_id = background(tr, now + second - 4, now + second + 1, STEADY, 30, rng, next_id)
            for window in WINDOWS:
                assert not trending(tr, now + second + 1, window=window)
                assert not trending(tr, now + second + 1, region="us", window=window)
    # the first 10 s have left the window; each account counts author_cap times
    assert figures(tr, "buyfollowers", None, "5m") == (3 * CONFIG.author_cap, 870, 3)


def test_a_trend_decays_and_goes_once_its_burst_is_over():
    tr, rng, next_id, now = warmed()
    for i in range(40):
        tr.observe("flash", None, 10**6 + i, 10**9 + i, now + i / 4)
    next_id = background(tr, now, now + 30, STEADY, 30, rng, next_id)
    now += 30
    first = tr.top(None, "5m", now)[0]
    next_id = background(tr, now, now + 120, STEADY, 30, rng, next_id)
    later = tr.top(None, "5m", now + 120)[0]
    assert later.tag == first.tag == "flash" and later.score >= first.score / 2 - 1e-9
    next_id = background(tr, now + 120, now + 400, STEADY, 30, rng, next_id)
    assert "flash" not in trending(tr, now + 400)


def test_removed_tweets_leave_the_trend_and_its_samples():
    tr, _, _, now = warmed()
    for i in range(30):
        tr.observe("hoax", "us", 10**6 + i, 10**9 + i, now + i)
    now += 30
    assert trending(tr, now) == ["hoax"]
    assert all(tr.remove("hoax", "us", 10**6 + i, 10**9 + i, now - 30 + i) for i in range(29, 3, -1))
    assert trending(tr, now) == []  # four authors left: below min_authors
    assert tr.stats("hoax", None, "5m").samples == (10**9 + 3, 10**9 + 2, 10**9 + 1)


def test_top_is_ranked_and_cut_to_k():
    tr, _, _, now = warmed()
    for size, tag in ((30, "big"), (20, "mid"), (12, "small")):
        for i in range(size):
            tr.observe(tag, None, hash(tag) % 1000 * 1000 + i, hash(tag) % 1000 * 10**6 + i, now + i / size)
    now += 2
    got = tr.top(None, "5m", now)
    assert [e.tag for e in got] == ["big", "mid", "small"]
    assert [e.score for e in got] == sorted((e.score for e in got), reverse=True)
    assert [e.tag for e in tr.top(None, "5m", now, k=2)] == ["big", "mid"]
    with pytest.raises(ValueError, match="known: 5m, 1h, 24h"):
        tr.top(None, "7d", now)


def test_nothing_is_published_before_the_baseline_has_history():
    tr = tracker()
    for i in range(30):
        tr.observe("early", None, i, i, T0 + i)
    assert tr.top(None, "5m", T0 + 30) == []


# A small geometry with the same shape as the defaults: an exact short window, a detail horizon
# of 10 min rolled up into 10 min summaries, and a long window made of them.
SMALL = TrendingConfig(detail_s=600, summary_s=600, warmup_s=60, windows=(
    Window("1m", 60, 600, 120, 10), Window("10m", 600, 3600, 1200, 60), Window("30m", 1800, 7200, 3600, 300)))


def test_long_windows_add_summaries_to_the_detail_horizon():
    tr = tracker(SMALL)
    for minute in range(180):  # three hours: the long window's baselines have history behind them
        for account in (1, 2, 3):
            tr.observe("spam", "us", account, minute * 10 + account, T0 + minute * 60)
        tr.advance(T0 + minute * 60 + 1)
    now = T0 + 180 * 60
    got = tr.stats("spam", "us", "30m")
    # three rolled-up summaries and the detail horizon each hold the same three accounts:
    # author-summaries pile up, but the gate takes the most distinct in any one of them
    assert (got.count, got.authors) == (12, 12) and got.tweets > 90
    assert tr.top("us", "30m", now) == []
    for i in range(20):
        tr.observe("real", "us", 100 + i, 10**6 + i, now + i)
    assert [e.tag for e in tr.top("us", "30m", now + 20)] == ["real"]
    assert [e.tag for e in tr.top("us", "1m", now + 20)] == ["real"]


def test_the_tracker_names_its_windows_and_regions():
    tr = tracker()
    tr.observe("a", "us", 1, 1, T0)
    tr.observe("a", None, 1, 2, T0)
    assert tr.windows() == WINDOWS and tr.regions() == ("us",)


# -- memory bounds ------------------------------------------------------------------------------


def test_quiet_tags_are_forgotten_once_they_leave_every_window():
    tr = tracker()
    tr.observe("once", None, 1, 1, T0)
    tr.advance(T0 + 3700)  # rolled up with one tweet: below min_count, it can never trend
    assert tr.stats("once", None, "24h") is None


def test_tracked_tags_are_bounded_by_evicting_the_least_active():
    tr = tracker(TrendingConfig(max_tags=100))
    for i in range(150):
        for j in range(1 + i % 7):
            tr.observe(f"t{i}", None, j, i * 10 + j, T0)
    tr.advance(T0 + 1)
    assert tr.footprint().tags <= 100
    assert tr.stats("t6", None, "5m") is not None  # seven tweets: among the most active
    assert tr.stats("t7", None, "5m") is None  # one tweet: evicted first


def test_tracked_tags_per_region_are_bounded():
    tr = tracker(TrendingConfig(max_tags_per_region=10))
    for i in range(30):
        for j in range(1 + i % 3):
            tr.observe(f"t{i}", "us", j, i * 10 + j, T0)
    tr.advance(T0 + 1)
    assert sum(tr.stats(f"t{i}", "us", "5m") is not None for i in range(30)) <= 10
    assert all(tr.stats(f"t{i}", None, "5m") is not None for i in range(30))  # worldwide untouched
    assert tr.observe("t0", "us", 99, 999, T0 + 1) is Outcome.COUNTED  # a new series starts afresh
    assert figures(tr, "t0", "us", "5m") == (1, 1, 1)


def test_records_are_bounded_by_rolling_up_early():
    tr = tracker(TrendingConfig(max_records=1000))
    for i in range(2000):
        tr.observe(f"t{i % 3}", None, i, i, T0 + i)
        if i % 10 == 9:
            tr.advance(T0 + i + 1)
    assert tr.footprint().records <= 1000
    assert sum(figures(tr, f"t{k}", None, "24h")[1] for k in range(3)) == 2000  # nothing lost


# -- checkpoints --------------------------------------------------------------------------------


def carry_on(tr, ops):
    """Apply ops to a tracker after a checkpoint, on tweets of their own (ids past the first ops')."""
    for op, tag, region, author, tid, dt in ops:
        at = T0 + dt
        if op == "advance":
            tr.advance(at)
        elif op == "observe":
            tr.observe(tag, region, author, tid + 100, at)
        else:
            tr.remove(tag, region, author, tid + 100, at)


@settings(max_examples=100, deadline=None)
@given(ops, ops)
def test_snapshot_restore_carries_on_identically(before, after):
    original, _ = replay(before)
    data = json.loads(json.dumps(original.snapshot()))
    restored = TrendingTracker.restore(LOOSE, data)
    assert restored.snapshot() == data
    for tr in (original, restored):
        carry_on(tr, after)
    assert restored.snapshot() == original.snapshot()
    for window in WINDOWS:
        assert restored.top(None, window, T0 + 9000) == original.top(None, window, T0 + 9000)


@settings(max_examples=100, deadline=None)
@given(ops, ops)
def test_a_snapshot_built_later_is_the_state_when_it_was_taken(before, after):
    # snapshot_later() copies the state; its build (run in another thread by the agent) gives the
    # snapshot of that moment whatever the tracker has done since.
    tr, _ = replay(before)
    expected = json.loads(json.dumps(tr.snapshot()))
    build = tr.snapshot_later()
    carry_on(tr, after)
    assert json.loads(json.dumps(build())) == expected


def test_a_snapshot_from_other_windows_is_refused():
    data = tracker().snapshot()
    with pytest.raises(SnapshotMismatch):
        TrendingTracker.restore(TrendingConfig(bucket_s=5), data)


def test_footprint_counts_what_is_held():
    tr = tracker()
    for i in range(10):
        tr.observe("a", "us", i, i, T0)
        tr.observe("b", None, i, 100 + i, T0)
    fp = tr.footprint()
    assert (fp.tags, fp.series, fp.records, fp.summaries) == (2, 3, 20, 0)
    assert fp.bytes > 0
