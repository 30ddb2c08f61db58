"""Sliding-window trending hashtags, pure (DESIGN.md decision 10): buckets, baselines, scores.

Time is cut into buckets of `bucket_s`; windows slide one bucket at a time. The clock only moves
when the caller passes a time in (`advance`, `top`): nothing here reads the clock.

    older ◄──────────────────────────────────────────────────────────────────────────► now
    │ hourly summaries: count, authors per hour  │ detail: one record per tweet, in buckets │
    │ h-23 │ h-22 │ ...  │ h-2 │ h-1 (rolling in)│ b b b b b b b b b b b b b b b b b b b c  │
    │◄───────────────────────── 24h window: summaries + the detail part ──────────────────►│
                                                 │◄──────────── 1h window (exact) ─────────►│
                                                                            │◄─ 5m (exact)─►│
    a bucket leaving a short window folds its tweets into that window's baselines (EWMA rates);
    a bucket leaving the detail horizon rolls its records up into its hour's summary, and the
    windows as long or longer fold whole hours into their baselines.

Inside the detail horizon (`detail_s`) every tweet is a record, so a tweet counts once however
often it is delivered, a removal takes out exactly what it added, and the per-author cap and the
distinct-author count are exact. Older tweets live only in hourly summaries: one record per tweet
for a day would be ~10 GB at 500 hashtag events/s. In windows longer than the detail horizon the
cap therefore applies per author per hour and `authors` counts author-hours. docs/TRENDING.md has
the formula, the reasons and the measured figures.
"""

from __future__ import annotations

import enum
import heapq
import math
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.entities import tag_key
from pipeline.errors import StarlingError, TopologyError

SNAPSHOT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Window:
    """A sliding window `length_s` long, judged against two baselines of the tag's own."""

    name: str
    length_s: int
    # Time constants of the two baseline rates, exponentially weighted averages of what left the
    # window; the expected count is the larger. The long one is the tag's usual level, steady
    # enough that chance dips of a quiet tag do not make its next wobble look like news; the
    # recent one catches up with a rise that has lasted, which then stops trending, as Twitter's
    # "more right now than previously".
    baseline_s: int
    recent_s: int
    # A trend's score decays from its peak with this half-life (Mastodon: 4 h for daily trends),
    # so a list does not flicker when a burst pauses for a bucket or two.
    half_life_s: int


DEFAULT_WINDOWS = (
    Window("5m", 300, 3600, 600, 30),
    Window("1h", 3600, 6 * 3600, 2 * 3600, 600),
    Window("24h", 86400, 7 * 86400, 2 * 86400, 2 * 3600),
)
_WINDOW_KEYS = ("length_s", "baseline_s", "recent_s", "half_life_s")


@dataclass(frozen=True)
class TrendingConfig:
    # 10 s buckets: a burst shows within a bucket of its start; 30 buckets make a 5 min window.
    bucket_s: int = 10
    windows: tuple[Window, ...] = DEFAULT_WINDOWS
    # One record per tweet for this long (dedup, exact removal, exact caps): deletions and
    # moderation mostly land within the hour, and an hour of records is ~0.45 GB at 500 events/s.
    detail_s: int = 3600
    # Older tweets are kept as per-hour summaries (count, distinct authors) per tag and region.
    summary_s: int = 3600
    # Event times further ahead of the clock are producer clock errors, not news.
    max_future_s: int = 300
    # Mastodon's trends need 5 distinct accounts: a handful of accounts cannot make a trend.
    min_authors: int = 5
    min_count: int = 5
    # Tweets one author counts for per tag per window (per hour beyond the detail horizon). One,
    # as Mastodon counts accounts, not posts: then `count` is the distinct authors, and three
    # accounts add three to a tag however fast they post.
    author_cap: int = 1
    # Pseudo-count added to every baseline: a tag never seen is taken to have about half a tweet
    # due per window, so a handful of tweets on a new tag is not infinitely surprising.
    prior_count: float = 0.5
    # Above this many expected tweets per window only relative growth raises the score: a
    # 3-sigma wobble of a tag at 30,000 tweets per window is not news, a doubling is.
    saturation_count: float = 50.0
    # In standard deviations: 4 sigma is ~3e-5 one-sided for a Gaussian, rare enough across
    # thousands of tags scored every few seconds once the author gate has passed.
    min_score: float = 4.0
    # A window publishes once its baseline has this much history behind it.
    warmup_s: int = 600
    top_k: int = 10
    samples: int = 3
    # Memory bounds, each shed down to 90% when passed (docs/TRENDING.md has the bytes). Tags
    # and region series go least active first: ~150 MB of tags, ~22 MB per region of series.
    max_tags: int = 100_000
    max_tags_per_region: int = 20_000
    # ~0.5 GB of records, an hour at 550 events/s: beyond it the detail horizon shrinks.
    max_records: int = 2_000_000
    never_trend: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        _check_config(self)

    @classmethod
    def from_mapping(cls, raw: Any) -> TrendingConfig:
        """The config under `tunables.trending`; missing keys keep their defaults, and any
        unknown key or bad value raises TopologyError naming it."""
        if not isinstance(raw, Mapping):
            raise _config_error("", "must be a mapping")
        for key in raw:
            if key not in _SCALARS and key not in ("windows", "never_trend"):
                raise _config_error(str(key), f"is not a setting (known: {', '.join(sorted(_KNOWN))})")
        values: dict[str, Any] = {key: _scalar(key, raw[key]) for key in _SCALARS if key in raw}
        if "windows" in raw:
            values["windows"] = _windows(raw["windows"])
        if "never_trend" in raw:
            values["never_trend"] = _never(raw["never_trend"])
        return cls(**values)

    def to_mapping(self) -> dict[str, Any]:
        """The inverse of from_mapping (YAML- and JSON-ready)."""
        out: dict[str, Any] = {key: getattr(self, key) for key in _SCALARS}
        out["windows"] = {w.name: {key: getattr(w, key) for key in _WINDOW_KEYS} for w in self.windows}
        out["never_trend"] = sorted(self.never_trend)
        return out


# Settings other than windows and never_trend: (type, smallest allowed value).
_SCALARS: dict[str, tuple[type, float]] = {
    "bucket_s": (int, 1), "detail_s": (int, 1), "summary_s": (int, 1), "max_future_s": (int, 0),
    "min_authors": (int, 1), "min_count": (int, 1), "author_cap": (int, 1),
    "prior_count": (float, 1e-9), "saturation_count": (float, 1e-9), "min_score": (float, 0),
    "warmup_s": (int, 0), "top_k": (int, 1), "samples": (int, 0), "max_tags": (int, 1),
    "max_tags_per_region": (int, 1), "max_records": (int, 1),
}
_KNOWN = (*_SCALARS, "windows", "never_trend")


def _config_error(key: str, problem: str) -> TopologyError:
    return TopologyError(f"tunables.trending{'.' if key else ''}{key} {problem}")


def _scalar(key: str, value: Any) -> int | float:
    kind, least = _SCALARS[key]
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int and not (numeric and isinstance(value, int)):
        raise _config_error(key, f"must be an integer, got {value!r}")
    if not numeric or not math.isfinite(value) or value < least:
        raise _config_error(key, f"must be a number >= {least:g}, got {value!r}")
    return int(value) if kind is int else float(value)


def _windows(raw: Any) -> tuple[Window, ...]:
    if not isinstance(raw, Mapping) or not raw:
        raise _config_error("windows", f"must be a non-empty mapping of name to {{{', '.join(_WINDOW_KEYS)}}}")
    out = []
    for name, spec in raw.items():
        where = f"windows.{name}"
        if not isinstance(spec, Mapping):
            raise _config_error(where, f"must be a mapping of {', '.join(_WINDOW_KEYS)}")
        extra = set(spec) - set(_WINDOW_KEYS)
        if extra:
            raise _config_error(f"{where}.{min(map(str, extra))}", "is not a window setting")
        numbers = []
        for key in _WINDOW_KEYS:
            value = spec.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise _config_error(f"{where}.{key}", f"must be a positive integer, got {value!r}")
            numbers.append(value)
        out.append(Window(str(name), *numbers))
    return tuple(out)


def _never(raw: Any) -> frozenset[str]:
    if not isinstance(raw, (list, tuple)) or not all(isinstance(t, str) and t.lstrip("#＃") for t in raw):
        raise _config_error("never_trend", "must be a list of tags")
    return frozenset(tag_key(t.lstrip("#＃")) for t in raw)


def _check_config(c: TrendingConfig) -> None:
    for key, (kind, least) in _SCALARS.items():
        value = getattr(c, key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                or value < least:
            raise _config_error(key, f"must be a number >= {least:g}, got {value!r}")
        if kind is int and not isinstance(value, int):
            raise _config_error(key, f"must be an integer, got {value!r}")
    for key in ("detail_s", "summary_s"):
        if getattr(c, key) % c.bucket_s:
            raise _config_error(key, f"must be a multiple of bucket_s ({c.bucket_s})")
    names = [w.name for w in c.windows]
    if not names or len(set(names)) != len(names):
        raise _config_error("windows", "must name at least one window, each once")
    for w in sorted(c.windows, key=lambda w: w.length_s):
        where = f"windows.{w.name}.length_s"
        if min(w.length_s, w.baseline_s, w.recent_s, w.half_life_s) <= 0:
            raise _config_error(f"windows.{w.name}", "lengths must be positive")
        if w.recent_s > w.baseline_s:
            raise _config_error(f"windows.{w.name}.recent_s", "must be at most baseline_s")
        if w.length_s % c.bucket_s:
            raise _config_error(where, f"must be a multiple of bucket_s ({c.bucket_s})")
        if w.length_s > c.detail_s and w.length_s % c.summary_s:
            raise _config_error(where, f"is longer than detail_s, so must be a multiple of summary_s ({c.summary_s})")
        if c.detail_s < w.length_s < c.detail_s + c.summary_s:
            raise _config_error(where, "must be at most detail_s or at least detail_s + summary_s "
                                "(its summaries must be complete hours)")
    if c.min_count > c.min_authors * c.author_cap:
        raise _config_error("min_count", f"can never be reached: min_authors x author_cap is "
                            f"{c.min_authors * c.author_cap}")


class SnapshotMismatch(StarlingError):
    """A snapshot taken with other buckets or windows: start afresh instead of restoring it."""


class Outcome(enum.Enum):
    """What `observe` did with an observation (for the agent's metrics)."""

    COUNTED = "counted"
    DUPLICATE = "duplicate"  # this tweet already counts for this tag (at-least-once delivery)
    REMOVED = "removed"  # the tweet was removed before: it never counts again
    LATE = "late"  # older than the detail horizon: it could no longer be deduplicated
    FUTURE = "future"  # further ahead of the clock than max_future_s
    IGNORED = "ignored"  # a never-trend tag: not even counted


# Enum members read through a descriptor (~1 us each on CPython 3.11): the per-event path uses these.
_COUNTED, _DUPLICATE, _REMOVED_AGAIN = Outcome.COUNTED, Outcome.DUPLICATE, Outcome.REMOVED
_LATE, _FUTURE, _IGNORED = Outcome.LATE, Outcome.FUTURE, Outcome.IGNORED


@dataclass(frozen=True, slots=True)
class Trend:
    tag: str
    score: float
    count: int  # tweets in the window after the per-author cap
    tweets: int  # every tweet in the window
    authors: int  # distinct authors (author-hours in windows longer than the detail horizon)
    expected: float  # the baseline: tweets expected in a window this long at the tag's usual rate
    samples: tuple[int, ...]  # the newest tweet ids of the window, not removed


@dataclass(frozen=True, slots=True)
class Footprint:
    tags: int
    series: int  # (tag, region) pairs plus one worldwide series per tag
    records: int  # tweets in the detail horizon
    summaries: int  # (series, hour) summaries
    bytes: int  # estimate from the per-object sizes below


# Bytes per object on CPython 3.11 (64-bit), measured with tracemalloc by
# `python -m bench.trending_quality` ("memory" in its results): used by footprint().
BYTES_PER_TAG = 400
BYTES_PER_SERIES = 1000  # ~1,200 once its baselines have folded, ~950 while still fresh
BYTES_PER_RECORD = 250  # the record, its id in a bucket, its author in the counts
BYTES_PER_SUMMARY = 150  # a frozen hour with no repeat author; 60-100 more per repeat author


def score(count: int, expected: float, prior_count: float, saturation_count: float, noise: float = 0.0) -> float:
    """How surprising `count` tweets are when `expected` were due, in standard deviations: the
    signed root of twice the Poisson log-likelihood ratio of "the rate is now count" against "the
    rate is still expected" (the deviance), divided by the count's variance over its Poisson
    variance, 1 + expected/saturation + noise. The saturation term makes big tags rank by
    relative growth only; `noise` is the baseline's own uncertainty (window length over the
    seconds of history behind the baseline: a Gamma-Poisson predictive's extra variance)."""
    e = expected + prior_count
    if count <= e:
        return 0.0
    return math.sqrt(2.0 * (count * math.log(count / e) - (count - e)) / (1.0 + e / saturation_count + noise))


# One series' tweets per author in the exact spans live in one int: 32 bits per span, span i at
# bit 32*i, so an observation costs one dict read and one write whatever the number of windows.
_FIELD = 32
_MASK = (1 << _FIELD) - 1
# A record is one int, author << 64 | bucket << 24 | region slot + 2: an int is not tracked by
# the garbage collector and costs half a tuple of three. Slot field 1 is "no region"; 0 marks a
# removed tweet, whose id keeps answering "removed" until its bucket rolls up. Buckets are stored
# from an offset below the tracker's start, so they are never negative.
_SLOT_BITS, _BUCKET_BITS = 24, 40
_SLOT_MASK, _BUCKET_MASK = (1 << _SLOT_BITS) - 1, (1 << _BUCKET_BITS) - 1
_AUTHOR_SHIFT = _SLOT_BITS + _BUCKET_BITS


class _Hour:
    """One series' rolled-up tweets of one hour. Once the hour is complete it is frozen and keeps
    only its repeat authors (anyone absent tweeted once), enough to take a tweet out exactly."""

    __slots__ = ("authors", "count", "distinct", "frozen", "tweets")

    def __init__(self) -> None:
        self.authors: dict[int, int] = {}
        self.count = 0
        self.tweets = 0
        self.distinct = 0
        self.frozen = False

    def drop(self, author: int, cap: int) -> bool:
        """Take out a tweet of `author` (TrendingTracker._roll adds them, inlined)."""
        n = self.authors.get(author, 1 if self.frozen else 0)
        if n == 0:
            return False
        if n > 2 or (n == 2 and not self.frozen):
            self.authors[author] = n - 1
        else:
            self.authors.pop(author, None)
        self.tweets -= 1
        self.count -= n <= cap
        self.distinct -= n == 1
        return True

    def freeze(self) -> None:
        self.authors = {a: n for a, n in self.authors.items() if n > 1}
        self.frozen = True


class _Series:
    """One tag in one scope: a region, or worldwide (region None, slot -1)."""

    __slots__ = ("authors", "base", "base_at", "counts", "dead", "distinct", "hours", "peaks", "raw", "region",
                 "slot", "tag")

    def __init__(self, tag: _Tag, region: str | None, slot: int, windows: int) -> None:
        self.tag = tag
        self.region = region
        self.slot = slot
        self.authors: dict[int, int] = {}  # author -> tweets in each exact span, packed
        self.counts = 0  # tweets after the per-author cap, per exact span, packed
        self.distinct = 0  # distinct authors per exact span, packed
        self.raw = 0  # all tweets per exact span, packed
        self.hours: dict[int, _Hour] = {}  # rolled-up hours
        self.base = [0.0] * (2 * windows)  # baseline rates (tweets/s, EWMA): long ones, recent ones
        self.base_at = [0.0] * (2 * windows)  # ... as of these times
        # Per window the last peak score, then when it was: only once a score passed the bar.
        self.peaks: list[float] | None = None
        self.dead = False

    def add(self, author: int, spans: range, cap: int) -> None:
        """Count a tweet in these exact spans."""
        v = self.authors.get(author, 0)
        for i in spans:
            one = 1 << (_FIELD * i)
            n = (v >> (_FIELD * i)) & _MASK
            v += one
            self.raw += one
            self.counts += one if n < cap else 0
            self.distinct += one if n == 0 else 0
        self.authors[author] = v

    def drop(self, author: int, span: int, cap: int) -> None:
        one = 1 << (_FIELD * span)
        v = self.authors[author]
        n = (v >> (_FIELD * span)) & _MASK
        v -= one
        if v:
            self.authors[author] = v
        else:
            del self.authors[author]
        self.raw -= one
        self.counts -= one if n <= cap else 0
        self.distinct -= one if n == 1 else 0

    def count(self, span: int) -> int:
        return (self.counts >> (_FIELD * span)) & _MASK

    def authors_in(self, span: int) -> int:
        return (self.distinct >> (_FIELD * span)) & _MASK

    def tweets(self, span: int) -> int:
        return (self.raw >> (_FIELD * span)) & _MASK

    def activity(self, detail: int) -> int:
        """Capped tweets in the detail horizon and the retained hours: what pruning weighs."""
        return self.count(detail) + sum(h.count for h in self.hours.values())


class _Tag:
    __slots__ = ("dead", "gone", "id", "name", "records", "regions", "scopes", "world")

    def __init__(self, name: str, tag_id: int, windows: int) -> None:
        self.name = name
        self.id = tag_id
        self.world = _Series(self, None, -1, windows)
        self.regions: dict[str, _Series] = {}
        # The live series a record counts in, by its slot field - 1: [0] no region, [k + 1] the
        # region series of slot k, (world,) again once that series is evicted.
        self.scopes: list[tuple[_Series, ...]] = [(self.world,)]
        self.records: dict[int, int] = {}  # tweet id -> record, in arrival order (see _SLOT_BITS)
        self.gone: dict[int, int] = {}  # tombstones: tweet id -> hour, while that hour is kept
        self.dead = False


class TrendingTracker:
    """Counts hashtag observations of one partition (every tag it holds, all regions) and ranks
    trends per region and worldwide. Not thread-safe: one per agent partition."""

    def __init__(self, config: TrendingConfig, now: float) -> None:
        self.config = c = config
        self._g = c.bucket_s
        self._bph = c.summary_s // c.bucket_s  # buckets per summary hour
        exact = sorted({w.length_s for w in c.windows if w.length_s < c.detail_s} | {c.detail_s})
        self._span_buckets = [n // c.bucket_s for n in exact]
        self._detail = len(exact) - 1  # the last exact span is the detail horizon
        self._every_span = sum(1 << (_FIELD * i) for i in range(len(exact)))
        self._detail_shift = _FIELD * self._detail
        self._windows = {w.name: i for i, w in enumerate(c.windows)}
        self._span_of = [exact.index(w.length_s) if w.length_s <= c.detail_s else -1 for w in c.windows]
        self._span_windows = [[w for w, s in enumerate(self._span_of) if s == span] for span in range(len(exact))]
        self._long = [w for w, s in enumerate(self._span_of) if s < 0]
        # Baseline e of window w: e = w for the long one, e = w + len(windows) for the recent one.
        self._tau = [float(w.baseline_s) for w in c.windows] + [float(w.recent_s) for w in c.windows]
        self._ewmas = [(w, w + len(c.windows)) for w in range(len(c.windows))]
        self._span_ewmas = [[e for w in ws for e in self._ewmas[w]] for ws in self._span_windows]
        self._cap = c.author_cap
        self._min_count = c.min_count
        self._origin = self._clock = float(now)
        self._c = int(now // self._g)  # the clock's bucket
        self._b0 = self._c - (1 << (_BUCKET_BITS - 1))  # records keep buckets from here
        # First bucket of each exact span: shorter spans first, so the starts never increase.
        self._starts = [self._c - n + 1 for n in self._span_buckets]
        self._first_hour = {w: self._hour_of_window(w) for w in self._long}
        self._late_before = self._starts[-1] * float(self._g)
        self._future_after = self._clock + c.max_future_s
        self._tags: dict[str, _Tag] = {}
        self._by_id: dict[int, _Tag] = {}
        self._next_id = 0
        # bucket -> (tag id, tweet id, tag id, tweet id, ...) of the records that landed in it
        self._buckets: dict[int, array[int]] = {}
        # The newest bucket's ids, cached; the sentinel bucket is one no event can fall in.
        self._last: tuple[int, array[int]] = (-(1 << 62), array("q"))
        self._nrecords = 0
        self._hour_index: dict[int, list[_Series]] = {}  # hour -> series with a summary of it
        self._open_hours: dict[int, list[_Series]] = {}  # hour -> series whose summary still grows
        self._gone_hours: dict[int, list[tuple[_Tag, int]]] = {}
        # Candidates per region (None: worldwide), the only series top() looks at: [0] those with
        # min_count in the shortest span, for its windows; [1] those with min_count in the detail
        # horizon or in their hours, for every other window. Every window's count is within one
        # of these, so no other series can pass min_count.
        self._hot: tuple[dict[str | None, set[_Series]], dict[str | None, set[_Series]]] = ({}, {})
        self._region_series: dict[str, int] = {}

    # -- the per-event path ---------------------------------------------------------------------

    def observe(self, tag: str, region: str | None, author: int, tweet_id: int, at: float) -> Outcome:
        """Count one hashtag of one delivered tweet: `tag` is its key (entities.tag_key), `region`
        the author's region or None, `at` the tweet's time in epoch seconds, ids 64-bit. A few
        microseconds: the windows slide in advance(), not here."""
        if not at >= self._late_before:  # written so that NaN is late too
            return _LATE
        if at > self._future_after:
            return _FUTURE
        t = self._tags.get(tag)
        if t is None:
            if tag in self.config.never_trend:
                return _IGNORED
            t = self._new_tag(tag)
        records = t.records
        seen = records.get(tweet_id)
        if seen is not None:
            return _DUPLICATE if seen & _SLOT_MASK else _REMOVED_AGAIN
        b = int(at // self._g)
        if region is None:
            field = 1
        else:
            field = (t.regions.get(region) or self._new_series(t, region)).slot + 2
        scopes = t.scopes[field - 1]
        records[tweet_id] = (author << _AUTHOR_SHIFT) | ((b - self._b0) << _SLOT_BITS) | field
        last_b, ids = self._last
        if b != last_b:
            ids = self._bucket(b)
        ids.append(t.id)
        ids.append(tweet_id)
        self._nrecords += 1
        if b < self._starts[0]:  # older than the shortest span: the slow path
            for s in scopes:
                self._count_late(s, b, author)
            return _COUNTED
        inc = self._every_span
        for s in scopes:
            authors = s.authors
            v = authors.get(author, 0)
            authors[author] = v + inc
            s.raw += inc
            if v == 0:  # a new author: every span counts the tweet
                s.distinct += inc
                s.counts += inc
            else:
                self._repeat(s, v)
            if s.counts & _MASK == self._min_count:
                self._heat(s, 0)
            if (s.counts >> self._detail_shift) & _MASK == self._min_count:
                self._heat(s, 1)
        return _COUNTED

    def _bucket(self, b: int) -> array[int]:
        ids = self._buckets.get(b)
        if ids is None:
            ids = self._buckets[b] = array("q")
        if b >= self._last[0]:
            self._last = (b, ids)
        return ids

    def _repeat(self, s: _Series, v: int) -> None:
        """Count a tweet of an author with packed counts `v` in the spans where they are under
        the cap, and as a new author in the spans they had no tweet in yet."""
        for i in range(self._detail + 1):
            n = (v >> (_FIELD * i)) & _MASK
            if n < self._cap:
                s.counts += 1 << (_FIELD * i)
                if n == 0:
                    s.distinct += 1 << (_FIELD * i)

    def _heat(self, s: _Series, level: int) -> None:
        self._hot[level].setdefault(s.region, set()).add(s)

    def _count_late(self, s: _Series, b: int, author: int) -> None:
        """A tweet older than the start of some exact spans: into their baselines, and counted
        in the others."""
        first = 0
        while b < self._starts[first]:
            for e in self._span_ewmas[first]:
                self._fold(s, e, 1, (b + 1) * self._g, self._g)
            first += 1
        s.add(author, range(first, self._detail + 1), self._cap)
        self._heat_if_due(s)

    def _heat_if_due(self, s: _Series) -> None:
        if s.count(0) >= self._min_count:
            self._heat(s, 0)
        if s.activity(self._detail) >= self._min_count:
            self._heat(s, 1)

    def remove(self, tag: str, region: str | None, author: int, tweet_id: int, at: float) -> bool:
        """Take a deleted, blocked or hidden tweet out of every count; the same arguments as its
        `observe`. Idempotent, and the tweet never counts again. True if it counted until now.

        Within the detail horizon this is exact whatever came before (a removal ahead of its
        tweet leaves a tombstone). Older tweets live only in hourly summaries, which cannot tell
        which tweets they hold: there a removal assumes its tweet was counted, so send one only
        for a tweet that was delivered to observe() and not refused as late."""
        if not at >= self._retained_from():
            return False
        t = self._tags.get(tag)
        if t is None:
            if tag in self.config.never_trend or at < self._late_before:
                return False
            t = self._new_tag(tag)  # a removal overtook its tweet: the tombstone stops it
        if tweet_id in t.gone:
            return False
        hour = int(at // self.config.summary_s)
        t.gone[tweet_id] = hour
        self._gone_hours.setdefault(hour, []).append((t, tweet_id))
        record = t.records.get(tweet_id)
        if record is not None:
            b, who, field = self._unpack(record)
            t.records[tweet_id] = (b - self._b0) << _SLOT_BITS  # slot field 0: removed
            for s in t.scopes[field - 1]:
                self._drop_live(s, b, who)
            return True
        if at >= self._late_before:  # not seen yet: a tombstone in its bucket stops it
            b = int(at // self._g)
            t.records[tweet_id] = (b - self._b0) << _SLOT_BITS
            self._bucket(b).extend((t.id, tweet_id))
            self._nrecords += 1
            return False
        removed = self._drop_rolled(t.world, at, author)
        rs = t.regions.get(region) if region is not None else None
        if rs is not None:
            self._drop_rolled(rs, at, author)
        return removed

    def _drop_live(self, s: _Series, b: int, author: int) -> None:
        for i, start in enumerate(self._starts):
            if b >= start:
                s.drop(author, i, self._cap)
            else:
                for e in self._span_ewmas[i]:
                    self._fold(s, e, -1, (b + 1) * self._g, self._g)

    def _drop_rolled(self, s: _Series, at: float, author: int) -> bool:
        span = self.config.summary_s
        hour = int(at // span)
        tally = s.hours.get(hour)
        if tally is None or not tally.drop(author, self._cap):
            return False
        b = int(at // self._g)
        for ewmas in self._span_ewmas[: self._detail]:
            for e in ewmas:
                self._fold(s, e, -1, (b + 1) * self._g, self._g)
        if tally.frozen:
            for e in self._span_ewmas[self._detail]:
                self._fold(s, e, -1, (hour + 1) * span, span)
        for w in self._long:
            if hour < self._first_hour[w]:
                for e in self._ewmas[w]:
                    self._fold(s, e, -1, (hour + 1) * span, span)
        return True

    # -- the clock ------------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Move the clock to `now` (never back): slide windows, roll up, fold baselines, prune."""
        if not now > self._clock:
            return
        self._clock = now
        self._future_after = now + self.config.max_future_s
        c = int(now // self._g)
        if c != self._c:
            self._c = c
            self._slide(c - self._span_buckets[-1] + 1)
        self._bound()

    def _slide(self, detail_start: int) -> None:
        detail_start = max(detail_start, self._starts[-1])
        for i, n in enumerate(self._span_buckets):
            target = detail_start if i == self._detail else max(self._c - n + 1, detail_start)
            if target > self._starts[i]:
                (self._roll if i == self._detail else self._expire)(i, self._starts[i], target)
                self._starts[i] = target
        self._late_before = self._starts[-1] * float(self._g)
        self._freeze_hours()
        self._prune(self._leave_long_windows())

    def _live_buckets(self, lo: int, hi: int) -> Iterable[int]:
        return range(lo, hi) if hi - lo <= 2 * len(self._buckets) else sorted(b for b in self._buckets if lo <= b < hi)

    def _expire(self, span: int, lo: int, hi: int) -> None:
        """Buckets [lo, hi) leave exact span `span`, shorter than the detail horizon: out of its
        counts, into its windows' baselines, one fold per series and bucket."""
        cap, shift, one, by_id = self._cap, _FIELD * span, 1 << (_FIELD * span), self._by_id
        for b in self._live_buckets(lo, hi):
            ids = self._buckets.get(b)
            if ids is None:
                continue
            left: dict[_Series, int] = {}
            pairs = iter(ids)
            for tag_id, tid in zip(pairs, pairs):
                t = by_id.get(tag_id)
                if t is None:
                    continue
                record = t.records.get(tid)
                if not record or not record & _SLOT_MASK:  # None, or removed
                    continue
                author = record >> _AUTHOR_SHIFT
                for s in t.scopes[(record & _SLOT_MASK) - 1]:
                    authors = s.authors  # _Series.drop, inlined: this loop sees every record
                    v = authors[author]
                    n = (v >> shift) & _MASK
                    if v == one:
                        del authors[author]
                    else:
                        authors[author] = v - one
                    s.raw -= one
                    if n <= cap:
                        s.counts -= one
                        if n == 1:
                            s.distinct -= one
                    left[s] = left.get(s, 0) + 1
            end = (b + 1) * self._g
            for e in self._span_ewmas[span]:
                tau = self._tau[e]
                gain = -math.expm1(-self._g / tau) / self._g
                for s, n in left.items():  # _fold, inlined: one per series and bucket
                    at = s.base_at[e]
                    if end >= at:
                        s.base[e] = s.base[e] * math.exp((at - end) / tau) + n * gain
                        s.base_at[e] = end
                    else:
                        self._fold(s, e, n, end, self._g)

    def _roll(self, span: int, lo: int, hi: int) -> None:
        """Buckets [lo, hi) leave the detail horizon: records become hourly summaries. The
        detail horizon's own windows fold whole hours into their baselines, as they freeze."""
        cap, shift, one, by_id = self._cap, _FIELD * span, 1 << (_FIELD * span), self._by_id
        emptied: list[_Tag] = []
        for b in self._live_buckets(lo, hi):
            ids = self._buckets.pop(b, None)
            if ids is None:
                continue
            self._nrecords -= len(ids) // 2
            hour = b // self._bph
            pairs = iter(ids)
            for tag_id, tid in zip(pairs, pairs):
                t = by_id.get(tag_id)
                if t is None:
                    continue
                record = t.records.pop(tid, None)
                if not t.records:
                    t.records = {}  # a dict keeps its table when emptied: let the old one go
                    emptied.append(t)
                if not record or not record & _SLOT_MASK:  # None, or removed
                    continue
                author = record >> _AUTHOR_SHIFT
                for s in t.scopes[(record & _SLOT_MASK) - 1]:
                    authors = s.authors  # _Series.drop, inlined
                    v = authors[author]
                    n = (v >> shift) & _MASK
                    if v == one:
                        del authors[author]
                        if not authors:
                            s.authors = {}  # as above: a quiet series lets its author table go
                    else:
                        authors[author] = v - one
                    s.raw -= one
                    if n <= cap:
                        s.counts -= one
                        if n == 1:
                            s.distinct -= one
                    tally = s.hours.get(hour) or self._summary(s, hour)
                    n = tally.authors.get(author, 0)  # the author's tweets in the hour so far
                    tally.authors[author] = n + 1
                    tally.tweets += 1
                    if n < cap:
                        tally.count += 1
                        if n == 0:
                            tally.distinct += 1
        self._prune(emptied)

    def _summary(self, s: _Series, hour: int) -> _Hour:
        tally = s.hours.get(hour)
        if tally is None:
            tally = s.hours[hour] = _Hour()
            self._hour_index.setdefault(hour, []).append(s)
            self._open_hours.setdefault(hour, []).append(s)
        return tally

    def _freeze_hours(self) -> None:
        """Hours whose every bucket has rolled up: keep only their repeat authors, and fold them
        into the baselines of the windows as long as the detail horizon."""
        complete = self._starts[-1] // self._bph
        span, ewmas = self.config.summary_s, self._span_ewmas[self._detail]
        for hour in [h for h in self._open_hours if h < complete]:
            for s in self._open_hours.pop(hour):
                if hour in s.hours:
                    s.hours[hour].freeze()
                    for e in ewmas:
                        self._fold(s, e, s.hours[hour].tweets, (hour + 1) * span, span)

    def _hour_of_window(self, w: int) -> int:
        """The first summary hour inside long window w: hours overlapping it count whole."""
        return (self._c - self.config.windows[w].length_s // self._g + 1) // self._bph

    def _leave_long_windows(self) -> set[_Tag]:
        """Fold the hours that left each long window into its baseline; drop what no window keeps."""
        span = self.config.summary_s
        for w in self._long:
            first = self._hour_of_window(w)
            for hour in range(self._first_hour[w], first):
                for s in self._hour_index.get(hour, ()):
                    if hour in s.hours:
                        for e in self._ewmas[w]:
                            self._fold(s, e, s.hours[hour].tweets, (hour + 1) * span, span)
            self._first_hour[w] = max(first, self._first_hour[w])
        keep = self._retained_hour()
        quiet: set[_Tag] = set()
        for hour in [h for h in self._hour_index if h < keep]:
            for s in self._hour_index.pop(hour):
                s.hours.pop(hour, None)
                quiet.add(s.tag)
        for hour in [h for h in self._gone_hours if h < keep]:
            for t, tid in self._gone_hours.pop(hour):
                if t.gone.get(tid) == hour:
                    del t.gone[tid]
                quiet.add(t)
        return quiet

    def _retained_hour(self) -> int:
        """The oldest summary hour kept: the longest window's, or the detail horizon's."""
        if not self._long:
            return self._starts[-1] // self._bph
        return min(self._first_hour.values())

    def _retained_from(self) -> float:
        return self._retained_hour() * float(self.config.summary_s)

    def _fold(self, s: _Series, e: int, count: int, end: float, span: float) -> None:
        """Add `count` tweets of [end - span, end) to baseline e's rate (negative: take them
        out again). Folding in time order is an EWMA; a late tweet or a removal lands on the past
        with the weight it has decayed to since."""
        tau = self._tau[e]
        gain = count * -math.expm1(-span / tau) / span
        at = s.base_at[e]
        if end >= at:
            s.base[e] = s.base[e] * math.exp((at - end) / tau) + gain
            s.base_at[e] = end
        else:
            s.base[e] = max(0.0, s.base[e] + gain * math.exp((end - at) / tau))

    # -- memory bounds --------------------------------------------------------------------------

    def _prune(self, tags: Iterable[_Tag]) -> None:
        """Forget tags with nothing in the detail horizon and fewer than min_count tweets in all
        their retained hours: they cannot trend in any window, and their baseline is ~0."""
        for t in tags:
            if not t.dead and not t.records and not t.gone and t.world.activity(self._detail) < self._min_count:
                self._kill_tag(t)

    def _bound(self) -> None:
        """Over a bound, shed down to 90% of it, so the sort behind it runs rarely."""
        c = self.config
        if self._nrecords > c.max_records:
            self._shed_records(int(c.max_records * 0.9))
        if len(self._tags) > c.max_tags:
            excess = len(self._tags) - int(c.max_tags * 0.9)
            for t in heapq.nsmallest(excess, self._tags.values(), key=lambda t: t.world.activity(self._detail)):
                self._kill_tag(t)
        for region, n in list(self._region_series.items()):
            if n > c.max_tags_per_region:
                series = [t.regions[region] for t in self._tags.values() if region in t.regions]
                excess = n - int(c.max_tags_per_region * 0.9)
                for s in heapq.nsmallest(excess, series, key=lambda s: s.activity(self._detail)):
                    self._kill_series(s)

    def _shed_records(self, keep: int) -> None:
        """Overload: roll the oldest buckets up early, shrinking the detail horizon."""
        total = self._nrecords
        for b in sorted(self._buckets):
            if total <= keep or b >= self._c:
                break
            total -= len(self._buckets[b]) // 2
            self._slide(b + 1)

    def _kill_tag(self, t: _Tag) -> None:
        t.dead = True
        del self._tags[t.name]
        del self._by_id[t.id]
        for s in [t.world, *t.regions.values()]:
            self._kill_series(s)
        t.records, t.gone = {}, {}

    def _kill_series(self, s: _Series) -> None:
        for hot in self._hot:
            hot.get(s.region, set()).discard(s)
        if s.region is not None:
            self._region_series[s.region] -= 1
            del s.tag.regions[s.region]
            s.tag.scopes[s.slot + 1] = (s.tag.world,)
        s.dead = True
        s.authors, s.hours = {}, {}

    def _new_tag(self, name: str) -> _Tag:
        t = self._tags[name] = self._by_id[self._next_id] = _Tag(name, self._next_id, len(self.config.windows))
        self._next_id += 1
        return t

    def _new_series(self, t: _Tag, region: str) -> _Series:
        # Slots are never reused (a record keeps its slot), so they number the region series a
        # tag ever had: far below the 2^24 - 2 a record can hold.
        s = _Series(t, region, len(t.scopes) - 1, len(self.config.windows))
        t.regions[region] = s
        t.scopes.append((t.world, s))
        self._region_series[region] = self._region_series.get(region, 0) + 1
        return s

    # -- ranking --------------------------------------------------------------------------------

    def top(self, region: str | None, window: str, now: float, k: int | None = None) -> list[Trend]:
        """The k best trends of `window` (a configured name) in `region` (None: worldwide), best
        first. Empty until the window's baseline has warmup_s of history."""
        self.advance(now)
        w = self._window_index(window)
        c = self.config
        if self._clock - self._origin < c.windows[w].length_s + c.warmup_s:
            return []
        span = self._span_of[w]
        hot = self._hot[0 if span == 0 else 1].get(region, set())
        hot.difference_update([s for s in hot if s.dead or (
            s.count(0) if span == 0 else s.activity(self._detail)) < self._min_count])
        found = self._judge_exact(hot, w, span) if span >= 0 else self._judge_long(hot, w)
        found.sort(key=lambda e: (-e.score, e.tag))
        return [self._with_samples(e, region, w) for e in found[: c.top_k if k is None else k]]

    def _judge_exact(self, hot: Iterable[_Series], w: int, span: int) -> list[Trend]:
        """The candidates of a window over an exact span that pass, scored. Everything but the
        series' own counts and baseline is the same for all: worked out once, out of the loop."""
        c = self.config
        shift, min_count, min_authors = _FIELD * span, c.min_count, c.min_authors
        prior, saturation, bar = c.prior_count, c.saturation_count, c.min_score ** 2
        start = (self._c - self._span_buckets[span] + 1) * float(self._g)
        (long, recent), length = self._ewmas[w], float(c.windows[w].length_s)
        tau_long, tau_recent = self._tau[long], self._tau[recent]
        scale_long, scale_recent = self._expected_scale(long, start, length), self._expected_scale(recent, start, length)
        noise_long, noise_recent = self._noise(long, scale_long), self._noise(recent, scale_recent)
        found = []
        for s in hot:
            count = (s.counts >> shift) & _MASK
            authors = (s.distinct >> shift) & _MASK
            if count < min_count or authors < min_authors:
                continue
            base, at = s.base, s.base_at
            if at[long] == start and at[recent] == start:  # folded up to the window: no decay due
                by_long, by_recent = base[long] * scale_long, base[recent] * scale_recent
            else:
                by_long = base[long] * math.exp(min(0.0, (at[long] - start) / tau_long)) * scale_long
                by_recent = base[recent] * math.exp(min(0.0, (at[recent] - start) / tau_recent)) * scale_recent
            expected, noise = (by_long, noise_long) if by_long >= by_recent else (by_recent, noise_recent)
            e = expected + prior
            # Cheap and exact: 2 x LLR <= (count - e)^2 / e, so below this the score is under the
            # bar; only a series with a peak to decay from needs the full look.
            if (s.peaks is None or s.peaks[w] == 0.0) and (
                    count <= e or (count - e) ** 2 < bar * e * (1.0 + e / saturation + noise)):
                continue
            trend = self._rank(s, w, count, authors, expected, noise)
            if trend is not None:
                found.append(trend)
        return found

    def _judge_long(self, hot: Iterable[_Series], w: int) -> list[Trend]:
        found = []
        for s in hot:
            count, authors, gate, start, length = self._window_stats(s, w)
            if count >= self.config.min_count and gate >= self.config.min_authors:
                trend = self._rank(s, w, count, authors, *self._expected(s, w, start, length))
                if trend is not None:
                    found.append(trend)
        return found

    def _rank(self, s: _Series, w: int, count: int, authors: int, expected: float, noise: float) -> Trend | None:
        """The trend of a series that passed the gates: its score, or its last peak decayed."""
        c = self.config
        raw = best = score(count, expected, c.prior_count, c.saturation_count, noise)
        peaks, when = s.peaks, w + len(c.windows)
        if peaks is not None and peaks[w] > 0.0:
            best = max(raw, peaks[w] * 0.5 ** ((self._clock - peaks[when]) / c.windows[w].half_life_s))
            if best < c.min_score:
                peaks[w] = 0.0  # decayed under the bar: forgotten
        if raw >= c.min_score and raw >= best:
            if peaks is None:
                peaks = s.peaks = [0.0] * (2 * len(c.windows))
            peaks[w], peaks[when] = raw, self._clock  # a new peak
        if best < c.min_score or s.tag.name in c.never_trend:
            return None
        return Trend(s.tag.name, best, count, 0, authors, expected, ())

    def stats(self, tag: str, region: str | None, window: str) -> Trend | None:
        """One tag's figures in a window at the tracker's clock, trending or not: the raw score,
        no gates, no decay. None if the tag is not tracked in that scope."""
        w = self._window_index(window)
        t = self._tags.get(tag)
        s = None if t is None else t.world if region is None else t.regions.get(region)
        if s is None:
            return None
        count, authors, _, start, length = self._window_stats(s, w)
        expected, noise = self._expected(s, w, start, length)
        c = self.config
        raw = score(count, expected, c.prior_count, c.saturation_count, noise)
        return self._with_samples(Trend(tag, raw, count, 0, authors, expected, ()), region, w)

    def _window_index(self, window: str) -> int:
        try:
            return self._windows[window]
        except KeyError:
            raise ValueError(f"unknown trending window {window!r} (known: {', '.join(self._windows)})") from None

    def _window_stats(self, s: _Series, w: int) -> tuple[int, int, int, float, float]:
        """The capped count, authors, the authors that gate, the window's start and length."""
        span = self._span_of[w]
        if span >= 0:
            start = (self._c - self._span_buckets[span] + 1) * float(self._g)
            length = float(self.config.windows[w].length_s)
            return s.count(span), s.authors_in(span), s.authors_in(span), start, length
        count, authors = s.count(self._detail), s.authors_in(self._detail)
        gate = authors
        first = self._first_hour[w]
        for hour, tally in s.hours.items():
            if hour >= first:
                count += tally.count
                authors += tally.distinct
                gate = max(gate, tally.distinct)
        start = first * float(self.config.summary_s)
        return count, authors, gate, start, (self._c + 1) * self._g - start

    def _expected(self, s: _Series, w: int, start: float, length: float) -> tuple[float, float]:
        """Tweets expected in [start, start + length) at the larger baseline rate as of `start`,
        and that baseline's noise."""
        return max((s.base[e] * math.exp(min(0.0, (s.base_at[e] - start) / self._tau[e]))
                    * self._expected_scale(e, start, length), self._noise(e, self._expected_scale(e, start, length)))
                   for e in self._ewmas[w])

    def _noise(self, e: int, scale: float) -> float:
        """The window's length over the seconds of history behind baseline e, tau (1 - e^(-age/tau)):
        that is scale / tau. No history at all: nothing can be told from it."""
        return scale / self._tau[e] if scale > 0 else math.inf

    def _expected_scale(self, e: int, start: float, length: float) -> float:
        """Expected tweets per unit of baseline e's rate: the length, with the EWMA's start-up
        bias removed (its weights sum to 1 - e^(-age/tau), not 1, while it is young)."""
        age = start - self._origin
        return length / -math.expm1(-age / self._tau[e]) if age > 0 else 0.0

    def _with_samples(self, e: Trend, region: str | None, w: int) -> Trend:
        """The trend with its tweet total and the newest tweets of the window in its scope."""
        t = self._tags[e.tag]
        s = t.world if region is None else t.regions[region]
        span = self._span_of[w] if self._span_of[w] >= 0 else self._detail
        tweets = s.tweets(span)
        if self._span_of[w] < 0:
            tweets += sum(h.tweets for hour, h in s.hours.items() if hour >= self._first_hour[w])
        oldest = self._starts[span]
        picked: list[int] = []
        want = s.slot + 2
        for tid, record in reversed(t.records.items()):
            if len(picked) >= self.config.samples:
                break
            b, _, field = self._unpack(record)
            if b >= oldest and field and (region is None or field == want):
                picked.append(tid)
        return Trend(e.tag, e.score, e.count, tweets, e.authors, e.expected, tuple(picked))

    # -- inspection, checkpoints ----------------------------------------------------------------

    @property
    def clock(self) -> float:
        return self._clock

    def windows(self) -> tuple[str, ...]:
        return tuple(self._windows)

    def regions(self) -> tuple[str, ...]:
        """Regions with at least one tracked tag (the agent publishes a list per region)."""
        return tuple(sorted(r for r, n in self._region_series.items() if n > 0))

    def footprint(self) -> Footprint:
        series = len(self._tags) + sum(self._region_series.values())
        summaries = sum(len(v) for v in self._hour_index.values())
        size = (len(self._tags) * BYTES_PER_TAG + series * BYTES_PER_SERIES
                + self._nrecords * BYTES_PER_RECORD + summaries * BYTES_PER_SUMMARY)
        return Footprint(len(self._tags), series, self._nrecords, summaries, size)

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to carry on after a restart, as plain JSON-ready data. Per-window
        counts are not stored: restore() recounts them from the records."""
        return self.snapshot_later()()

    def snapshot_later(self) -> Callable[[], dict[str, Any]]:
        """snapshot() in two steps: this call copies what it needs (each tag's records, tombstones
        and per-hour authors as whole dicts, at C speed), and the function it returns builds the
        snapshot from those copies alone, so it may run in another thread while the tracker goes
        on. The build is the slow part: a per-record Python loop (136 ms for one tag of 150,000
        records on a quiet machine, 1.7 s in a busy worker, where it held up every batch)."""
        head = {"version": SNAPSHOT_VERSION, "geometry": _geometry(self.config), "origin": self._origin,
                "clock": self._clock, "detail_start": self._starts[-1],
                "first_hour": [self._first_hour[w] for w in self._long]}
        tags = [(t.name, dict(t.records), dict(t.gone), [scope[-1].region for scope in t.scopes],
                 [(s.region, list(s.base), list(s.base_at), None if s.peaks is None else list(s.peaks),
                   [(hour, h.count, h.tweets, h.distinct, h.frozen, dict(h.authors)) for hour, h in s.hours.items()])
                  for s in [t.world, *t.regions.values()]])
                for t in self._tags.values()]
        b0 = self._b0

        def build() -> dict[str, Any]:
            return {**head, "tags": [_tag_state(name, records, gone, regions, series, b0)
                                     for name, records, gone, regions, series in tags]}
        return build

    @classmethod
    def restore(cls, config: TrendingConfig, data: Mapping[str, Any]) -> TrendingTracker:
        """A tracker in the state `snapshot()` returned (its geometry must match `config`)."""
        if data.get("version") != SNAPSHOT_VERSION or data.get("geometry") != _geometry(config):
            raise SnapshotMismatch("trending snapshot was taken with other buckets or windows")
        tr = cls(config, float(data["origin"]))
        tr._clock = float(data["clock"])
        tr._future_after = tr._clock + config.max_future_s
        tr._c = int(tr._clock // tr._g)
        detail = int(data["detail_start"])
        tr._starts = [max(tr._c - n + 1, detail) for n in tr._span_buckets]
        tr._starts[-1] = detail
        tr._late_before = detail * float(tr._g)
        tr._first_hour = dict(zip(tr._long, (int(h) for h in data["first_hour"])))
        for state in data["tags"]:
            tr._restore_tag(state)
        return tr

    def _unpack(self, record: int) -> tuple[int, int, int]:
        return _unpack(record, self._b0)

    def _restore_tag(self, state: Mapping[str, Any]) -> None:
        t = self._new_tag(state["tag"])
        for entry in state["series"]:
            region = entry["region"]
            s = t.world if region is None else self._new_series(t, region)
            s.base, s.base_at = list(entry["base"]), list(entry["base_at"])
            s.peaks = None if entry["peaks"] is None else list(entry["peaks"])
            for hour, count, tweets, distinct, frozen, repeats in entry["hours"]:
                tally = s.hours[hour] = _Hour()
                tally.count, tally.tweets, tally.distinct = count, tweets, distinct
                tally.authors = dict(zip(repeats[::2], repeats[1::2]))
                tally.frozen = bool(frozen)
                self._hour_index.setdefault(hour, []).append(s)
                if not frozen:
                    self._open_hours.setdefault(hour, []).append(s)
        for tid, hour in state["gone"]:
            t.gone[tid] = hour
            self._gone_hours.setdefault(hour, []).append((t, tid))
        for tid, b, author, region in zip(*state["records"]):
            self._bucket(b).extend((t.id, tid))
            self._nrecords += 1
            if author is None:
                t.records[tid] = (b - self._b0) << _SLOT_BITS
                continue
            field = t.regions[region].slot + 2 if region is not None else 1
            t.records[tid] = (author << _AUTHOR_SHIFT) | ((b - self._b0) << _SLOT_BITS) | field
            first = 0
            while b < self._starts[first]:
                first += 1  # already in those spans' baselines
            for s in t.scopes[field - 1]:
                s.add(author, range(first, self._detail + 1), self._cap)
        for s in [t.world, *t.regions.values()]:
            self._heat_if_due(s)


def _geometry(c: TrendingConfig) -> dict[str, Any]:
    return {"bucket_s": c.bucket_s, "detail_s": c.detail_s, "summary_s": c.summary_s,
            "windows": [[w.name, w.length_s, w.baseline_s, w.recent_s] for w in c.windows]}


def _unpack(record: int, b0: int) -> tuple[int, int, int]:
    """A record's bucket (records keep buckets from b0), author and slot field (0: removed, 1: no
    region, k + 2: slot k)."""
    return ((record >> _SLOT_BITS) & _BUCKET_MASK) + b0, record >> _AUTHOR_SHIFT, record & _SLOT_MASK


def _tag_state(name: str, records: Mapping[int, int], gone: Mapping[int, int], regions: Sequence[str | None],
               series: Sequence[tuple[Any, ...]], b0: int) -> dict[str, Any]:
    """A tag's records in arrival order (a removed one has author None), tombstones, series, from
    the copies snapshot_later() took (`regions`: the region of each slot field - 1)."""
    columns: tuple[list[int], list[int], list[int | None], list[str | None]] = ([], [], [], [])
    for tid, record in records.items():
        b, author, field = _unpack(record, b0)
        columns[0].append(tid)
        columns[1].append(b)
        columns[2].append(author if field else None)
        columns[3].append(regions[field - 1] if field else None)
    return {"tag": name, "records": list(columns), "gone": [[tid, hour] for tid, hour in gone.items()],
            "series": [{"region": region, "base": base, "base_at": base_at, "peaks": peaks,
                        "hours": [[hour, count, tweets, distinct, frozen, [x for a, n in authors.items() for x in (a, n)]]
                                  for hour, count, tweets, distinct, frozen, authors in hours]}
                       for region, base, base_at, peaks, hours in series]}
