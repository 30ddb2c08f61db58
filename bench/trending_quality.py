"""Trending quality against planted ground truth, throughput and memory of pipeline/trending.py.

    .venv/bin/python -m bench.trending_quality [--seeds 1,2,3] [--minutes 40]

Goals (the trending issue): at least 95% of planted bursts in the top 10 within 30 s of their
start; at most 5% of top-10 slots taken by always-popular tags, other steady tags or spam; at
least 50,000 hashtag events/s per process.

Each seed plays, in simulated time and from a seeded RNG, one stream into a tracker with the
default TrendingConfig:

- background: 150 hashtag events/s (+-15% over the hour), Zipf (s = 1) over 20,000 tags, each
  leaning to a home region; the 25 most used are the always-popular tags (the first alone draws
  ~15 events/s). 300,000 authors in five regions, 5% of events from authors with no region;
- 20 planted bursts over the measured period, starting at uniformly random times: a new tag, or
  a revived tail tag (rank >= 5,000: at most ~1 use per 5 min before), worldwide or (half of
  them) in one region, ramping up linearly over 0, 15, 30 or 60 s, holding 2-6 min, then fading
  with a 2 min time constant. Their size is the tweets in their first 30 s, 10 to 200
  (log-uniform), from as many distinct authors. Six more "faint" bursts of 5-9 tweets in their
  first 30 s are reported apart, outside the goal;
- 10 spam campaigns: 3 or 4 accounts posting one tag (new, always-popular, or mid-ranked) at
  0.5-3 tweets/s each for 2-8 min; half are moderated, their tweets removed 2-5 min later;
- at-least-once delivery and deletions: 1% of events are delivered again within 30 s, 0.5% of
  background tweets are deleted 10 s to 30 min later.

After a 15 min warm-up the top 10 of the 5 min window is taken every 5 s, worldwide and for each
region. A planted burst is detected when its tag enters the list of its scope (the worldwide list
for a worldwide burst, its region's for a regional one). A slot is wasted when it holds an
always-popular tag, another background tag (outside a burst on it), or a spammed tag.

Throughput: 8 simulated minutes at 1,000 events/s into a fresh tracker, then the clock moved past
the detail horizon so that every record also leaves the 5 min span and rolls up into an hourly
summary: events/s is over that whole life of an event, measured twice in the same run: with
Python's default collector thresholds and with the worker's (agents/main.py). Memory: tracemalloc.

    .venv/bin/python -m bench.trending_quality --throughput-only    (no quality runs, ~1 min)
"""

from __future__ import annotations

import argparse
import gc
import heapq
import math
import random
import sys
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from starling.heap import GC_THRESHOLDS
from bench.common import percentile, progress, write_results
from pipeline.trending import TrendingConfig, TrendingTracker

DEFAULT_GC = (700, 10, 10)  # CPython's thresholds

T0 = 1_700_000_000.0  # simulated epoch seconds at the start of each run
REGIONS = ("us", "br", "jp", "in", "gb")
REGION_SHARE = (0.35, 0.2, 0.15, 0.15, 0.15)
NO_REGION = 0.05
USERS_PER_REGION = 60_000
N_TAGS = 20_000
POPULAR = 25  # the always-popular head of the Zipf distribution
BG_RATE = 150.0
WARMUP_S = 15 * 60
SCORE_EVERY_S = 5
GOAL_RECALL, GOAL_WASTE, GOAL_EVENTS_PER_S = 0.95, 0.05, 50_000

# ("observe" | "remove", tag, region, author, tweet id, time)
Event = tuple[str, str, str | None, int, int, float]


@dataclass(frozen=True)
class Burst:
    tag: str
    region: str | None  # None: worldwide
    start: float
    ramp_s: float
    peak: float  # tweets/s
    hold_s: float
    first_30s: int
    kind: str  # "planted" or "faint"
    revived: bool

    def rate(self, t: float) -> float:
        dt = t - self.start
        if dt < 0:
            return 0.0
        if dt < self.ramp_s:
            return self.peak * dt / self.ramp_s
        if dt < self.ramp_s + self.hold_s:
            return self.peak
        return self.peak * math.exp(-(dt - self.ramp_s - self.hold_s) / 120)

    @property
    def end(self) -> float:
        return self.start + self.ramp_s + self.hold_s + 600  # the fade, down to ~0.7% of the peak


@dataclass(frozen=True)
class Spam:
    tag: str
    region: str
    accounts: tuple[int, ...]
    start: float
    end: float
    per_account: float
    moderated: bool


def peak_for(first_30s: int, ramp_s: float) -> float:
    """The peak rate that yields `first_30s` tweets in the first 30 s of a linear ramp."""
    in_ramp = min(ramp_s, 30.0) ** 2 / (2 * ramp_s) if ramp_s else 0.0
    return first_30s / (in_ramp + max(0.0, 30.0 - ramp_s))


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    n, p, limit = 0, rng.random(), math.exp(-lam)
    while p > limit:
        n += 1
        p *= rng.random()
    return n


def zipf_weights(n: int) -> list[float]:
    acc, cum = 0.0, []
    for rank in range(1, n + 1):
        acc += 1.0 / rank
        cum.append(acc)
    return cum


class Scenario:
    """The ground truth of one seed (tags, authors, bursts, spam) and the stream it makes."""

    def __init__(self, seed: int, minutes: int, background: float = BG_RATE) -> None:
        self.rng = random.Random(seed)
        self.background = background
        self.end = T0 + WARMUP_S + minutes * 60
        self.tags = [f"bg{rank}" for rank in range(1, N_TAGS + 1)]
        self.cum = zipf_weights(N_TAGS)
        self.home = {tag: REGIONS[i % len(REGIONS)] for i, tag in enumerate(self.tags)}
        measured = (T0 + WARMUP_S + 60, self.end - 11 * 60)  # each burst gets 10 min to be seen
        self.bursts = [self._burst(f"burst{k}", "planted", measured) for k in range(20)]
        self.bursts += [self._burst(f"faint{k}", "faint", measured) for k in range(6)]
        self.spam = [self._spam(k, measured) for k in range(10)]
        self._next_id = 0

    def _burst(self, name: str, kind: str, measured: tuple[float, float]) -> Burst:
        rng = self.rng
        revived = rng.random() < 0.3
        tag = self.tags[rng.randrange(5000, N_TAGS)] if revived else name
        if kind == "planted":
            first_30s = round(math.exp(rng.uniform(math.log(10), math.log(200))))
        else:
            first_30s = rng.randrange(5, 10)
        ramp = rng.choice((0.0, 15.0, 30.0, 60.0))
        region = rng.choices(REGIONS, REGION_SHARE)[0] if rng.random() < 0.5 else None
        return Burst(tag, region, rng.uniform(*measured), ramp, peak_for(first_30s, ramp),
                     rng.uniform(120, 360), first_30s, kind, revived)

    def _spam(self, k: int, measured: tuple[float, float]) -> Spam:
        rng = self.rng
        roll = rng.random()
        if roll < 0.7:
            tag = f"spam{k}"
        else:
            tag = self.tags[rng.randrange(POPULAR) if roll < 0.85 else rng.randrange(50, 500)]
        accounts = tuple(10_000_000 + 10 * k + i for i in range(rng.choice((3, 3, 4))))
        start = rng.uniform(*measured)
        return Spam(tag, rng.choice(REGIONS), accounts, start, start + rng.uniform(120, 480),
                    rng.uniform(0.5, 3.0), rng.random() < 0.5)

    def _author(self, region: str | None) -> tuple[int, str | None]:
        """A random author of `region`, or of a random region (some authors have none)."""
        rng = self.rng
        if region is None:
            if rng.random() < NO_REGION:
                return 9_000_000 + rng.randrange(USERS_PER_REGION), None
            region = rng.choices(REGIONS, REGION_SHARE)[0]
        return REGIONS.index(region) * USERS_PER_REGION + rng.randrange(USERS_PER_REGION), region

    def _event(self, tag: str, region: str | None, author: int, at: float) -> Event:
        self._next_id += 1
        return ("observe", tag, region, author, self._next_id, at)

    def stream(self) -> Iterator[tuple[float, list[Event]]]:
        """(end of second, its events in time order, then what falls due in it: redeliveries of
        earlier events and removals)."""
        rng = self.rng
        later: list[tuple[float, int, Event]] = []
        second = T0
        while second < self.end:
            new = self._background(second, later) + self._bursts(second) + self._spam_events(second, later)
            new.sort(key=lambda e: e[5])
            for event in new:
                if rng.random() < 0.01:
                    heapq.heappush(later, (event[5] + rng.uniform(0, 30), event[4], event))
            while later and later[0][0] < second + 1:
                new.append(heapq.heappop(later)[2])
            second += 1
            yield second, new

    def _background(self, second: float, later: list[tuple[float, int, Event]]) -> list[Event]:
        rng = self.rng
        lam = self.background * (1 + 0.15 * math.sin(2 * math.pi * (second - T0) / 3600))
        out = []
        for tag in rng.choices(self.tags, cum_weights=self.cum, k=poisson(rng, lam)):
            author, region = self._author(self.home[tag] if rng.random() < 0.5 else None)
            event = self._event(tag, region, author, second + rng.random())
            out.append(event)
            if rng.random() < 0.005:
                heapq.heappush(later, (event[5] + rng.uniform(10, 1800), event[4], ("remove", *event[1:])))
        return out

    def _bursts(self, second: float) -> list[Event]:
        out = []
        for b in self.bursts:
            if b.start - 1 < second < b.end:
                for _ in range(poisson(self.rng, b.rate(second + 0.5))):
                    author, region = self._author(b.region)
                    out.append(self._event(b.tag, region, author, max(b.start, second + self.rng.random())))
        return out

    def _spam_events(self, second: float, later: list[tuple[float, int, Event]]) -> list[Event]:
        rng = self.rng
        out = []
        for c in self.spam:
            if c.start <= second < c.end:
                for account in c.accounts:
                    for _ in range(poisson(rng, c.per_account)):
                        event = self._event(c.tag, c.region, account, second + rng.random())
                        out.append(event)
                        if c.moderated:
                            heapq.heappush(later, (event[5] + rng.uniform(120, 300), event[4], ("remove", *event[1:])))
        return out


class Run:
    """Plays a stream into a tracker and keeps the score against the scenario's ground truth."""

    def __init__(self, scenario: Scenario, config: TrendingConfig) -> None:
        self.s = scenario
        self.tr = TrendingTracker(config, T0)
        self.events = self.removals = 0
        self.tracker_s = self.top_s = 0.0
        self.top_calls = 0
        self.detected: dict[int, float] = {}  # burst index -> first time in its scope's list
        self.slots = {"planted": 0, "faint": 0, "popular": 0, "steady": 0, "spam": 0}
        self.entered: dict[str, set[str]] = {k: set() for k in self.slots}

    def play(self, stream: Iterator[tuple[float, list[Event]]] | list[tuple[float, list[Event]]]) -> Run:
        tr = self.tr
        for second, events in stream:
            t0 = time.perf_counter()
            for kind, tag, region, author, tid, at in events:
                if kind == "observe":
                    tr.observe(tag, region, author, tid, at)
                else:
                    tr.remove(tag, region, author, tid, at)
            tr.advance(second)
            self.tracker_s += time.perf_counter() - t0
            self.events += len(events)
            if second >= T0 + WARMUP_S and (second - T0) % SCORE_EVERY_S == 0:
                self._score(second)
        return self

    def _score(self, now: float) -> None:
        for region in (None, *REGIONS):
            t0 = time.perf_counter()
            top = self.tr.top(region, "5m", now)
            self.top_s += time.perf_counter() - t0
            self.top_calls += 1
            for entry in top:
                kind = self._classify(entry.tag, region, now)
                self.slots[kind] += 1
                self.entered[kind].add(entry.tag)

    def _classify(self, tag: str, region: str | None, now: float) -> str:
        for i, b in enumerate(self.s.bursts):
            if b.tag == tag and b.start <= now <= b.end:
                if b.region == region and i not in self.detected:  # in the list of its own scope
                    self.detected[i] = now
                return b.kind
        for c in self.s.spam:
            if c.tag == tag and c.start <= now <= c.end + 900:
                return "spam"
        rank = int(tag[2:]) if tag.startswith("bg") else 0
        return "popular" if 0 < rank <= POPULAR else "steady"

    def results(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind in ("planted", "faint"):
            bursts = [(i, b) for i, b in enumerate(self.s.bursts) if b.kind == kind]
            latency = {i: self.detected[i] - b.start for i, b in bursts if i in self.detected}
            within = sum(1 for x in latency.values() if x <= 30)
            out[kind] = {
                "bursts": len(bursts), "detected": len(latency), "within_30s": within,
                "recall_30s": round(within / len(bursts), 4),
                "latency_p50_s": round(percentile(list(latency.values()), 50), 1),
                "latency_p90_s": round(percentile(list(latency.values()), 90), 1),
                "latency_max_s": round(max(latency.values(), default=float("nan")), 1),
                "missed_30s": [{"tag": b.tag, "region": b.region, "first_30s": b.first_30s, "ramp_s": b.ramp_s,
                                "revived": b.revived, "latency_s": latency.get(i)}
                               for i, b in bursts if latency.get(i, math.inf) > 30],
            }
        filled = sum(self.slots.values())
        wasted = self.slots["popular"] + self.slots["steady"] + self.slots["spam"]
        lists = self.top_calls
        entered = set().union(*self.entered.values())
        true_tags = self.entered["planted"] | self.entered["faint"]
        out["slots"] = {"lists": lists, "filled": filled, "mean_fill": round(filled / max(1, lists), 2),
                        **self.slots, "wasted_share": round(wasted / max(1, filled), 4)}
        out["tags"] = {"entered_top10": len(entered), "planted": len(true_tags),
                       "precision": round(len(true_tags) / max(1, len(entered)), 4),
                       "popular": sorted(self.entered["popular"]), "spam": sorted(self.entered["spam"]),
                       "steady": sorted(self.entered["steady"])}
        out["stream"] = {"events": self.events, "tracker_events_per_s": round(self.events / self.tracker_s),
                         "top_ms": round(self.top_s / max(1, self.top_calls) * 1000, 3),
                         "footprint_at_end": asdict(self.tr.footprint())}
        return out


def throughput(config: TrendingConfig, rate: int = 1000, minutes: int = 8) -> dict[str, Any]:
    """Events/s of the tracker over an event's whole life (observe, leave the 5 min span, roll up
    out of the detail horizon), with Python's default collector thresholds and with the worker's
    (agents/main.py), one after the other in this process."""
    before = gc.get_threshold()
    try:
        gc.set_threshold(*DEFAULT_GC)
        default = _throughput(config, rate, minutes)
        gc.set_threshold(*GC_THRESHOLDS)
        worker = _throughput(config, rate, minutes)
    finally:
        gc.set_threshold(*before)
    return {**worker, "gc_thresholds": list(GC_THRESHOLDS), "default_gc": default}


def _throughput(config: TrendingConfig, rate: int, minutes: int) -> dict[str, Any]:
    rng = random.Random(7)
    tags = [f"bg{rank}" for rank in range(1, N_TAGS + 1)]
    n = rate * minutes * 60
    names = rng.choices(tags, cum_weights=zipf_weights(N_TAGS), k=n)
    regions = rng.choices((*REGIONS, None), (*REGION_SHARE, NO_REGION), k=n)
    authors = [rng.randrange(5 * USERS_PER_REGION) for _ in range(n)]
    gc.collect()
    tr = TrendingTracker(config, T0)
    t0 = time.perf_counter()
    for second in range(minutes * 60):
        base = second * rate
        for i in range(base, base + rate):
            tr.observe(names[i], regions[i], authors[i], i, T0 + second + (i - base) / rate)
        tr.advance(T0 + second + 1)
    running = time.perf_counter() - t0
    fp = tr.footprint()
    t0 = time.perf_counter()
    tr.advance(T0 + minutes * 60 + config.detail_s + 60)
    drain = time.perf_counter() - t0
    return {"events": n, "rate_simulated_per_s": rate, "records_held": fp.records, "tags": fp.tags,
            "observe_and_5m_expiry_per_s": round(n / running), "whole_life_per_s": round(n / (running + drain)),
            "seconds": round(running + drain, 1)}


def memory(config: TrendingConfig) -> dict[str, Any]:
    """Bytes per tag, (tag, region) series, record and hourly summary, by difference of traced
    memory, and per tracked tag after 5 simulated minutes of the benchmark's background."""
    n = 1000

    def traced(per_tag: int, region: str | None = None, hours: int = 0) -> float:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        tr = TrendingTracker(config, T0)
        for hour in range(max(1, hours)):
            tr.advance(T0 + hour * 3600)
            for i in range(n):
                for j in range(per_tag):
                    tr.observe(f"tag{i}", region, i * 100 + j, hour * 10**7 + i * 100 + j, T0 + hour * 3600 + 1)
            tr.advance(T0 + hour * 3600 + 2)
        if hours:
            tr.advance(T0 + (hours + 1) * 3600)  # every record rolled up into frozen hours
        size = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        return size / n

    one = traced(1)  # a tag, its worldwide series, one record
    record = (traced(11) - one) / 10
    series = traced(1, "us") - one
    tag = one - record - series
    one_hour = traced(11, hours=1)
    summary = (traced(11, hours=3) - one_hour) / 2  # more frozen hours of 11 authors each
    folded = one_hour - tag - series - summary  # a series once its baselines have been folded

    scenario = Scenario(1, 0)
    scenario.bursts, scenario.spam = [], []
    stream = [(second, events) for second, events in scenario.stream() if second <= T0 + 300]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    run = Run(scenario, config).play(stream)
    workload = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    fp = run.tr.footprint()
    return {"bytes_per_tag": round(tag), "bytes_per_series": round(series), "bytes_per_record": round(record),
            "bytes_per_hour_summary": round(summary), "bytes_per_series_once_folded": round(series + folded),
            "background_5min": {"tags": fp.tags, "series": fp.series, "records": fp.records, "traced_bytes": workload,
                                "bytes_per_tracked_tag": round(workload / max(1, fp.tags)),
                                "footprint_estimate_bytes": fp.bytes}}


def quality(seed: int, minutes: int, config: TrendingConfig) -> dict[str, Any]:
    t0 = time.perf_counter()
    scenario = Scenario(seed, minutes)
    res = Run(scenario, config).play(scenario.stream()).results()
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="1,2,3", help="comma-separated RNG seeds (default 1,2,3)")
    p.add_argument("--minutes", type=int, default=40, help="simulated minutes measured after the warm-up")
    p.add_argument("--throughput-only", action="store_true", help="only the throughput figures")
    args = p.parse_args(argv)
    config = TrendingConfig()
    if args.throughput_only:
        speed = throughput(config)
        print(f"throughput: {speed['whole_life_per_s']:,} events/s over an event's whole life with the worker's "
              f"collector thresholds {GC_THRESHOLDS}, {speed['default_gc']['whole_life_per_s']:,}/s with "
              f"Python's default {DEFAULT_GC}; goal 50,000")
        write_results("trending_tracker_throughput", {"throughput": speed})
        return 0
    seeds = [int(x) for x in args.seeds.split(",")]
    per_seed = {}
    for seed in seeds:
        progress(f"seed {seed}: {WARMUP_S // 60} min warm-up + {args.minutes} min measured, simulated")
        per_seed[seed] = quality(seed, args.minutes, config)
        report(seed, per_seed[seed])
    progress("throughput: 8 simulated minutes at 1,000 events/s, then the roll-up")
    speed = throughput(config)
    progress("memory (tracemalloc)")
    mem = memory(config)
    planted = [per_seed[s]["planted"] for s in seeds]
    recall = sum(x["within_30s"] for x in planted) / sum(x["bursts"] for x in planted)
    filled = sum(per_seed[s]["slots"]["filled"] for s in seeds)
    wasted = sum(per_seed[s]["slots"][k] for s in seeds for k in ("popular", "steady", "spam"))
    latencies = [per_seed[s]["planted"]["latency_p50_s"] for s in seeds]
    summary = {"recall_30s": round(recall, 4), "wasted_share": round(wasted / max(1, filled), 4),
               "latency_p50_s_per_seed": latencies, "events_per_s": speed["whole_life_per_s"],
               "goals": {"recall_30s_ge_95pct": recall >= GOAL_RECALL,
                         "wasted_le_5pct": wasted / max(1, filled) <= GOAL_WASTE,
                         "events_per_s_ge_50k": speed["whole_life_per_s"] >= GOAL_EVENTS_PER_S}}
    print(f"\nall seeds {seeds}: {recall:.1%} of planted bursts in the top 10 within 30 s (goal >= 95%), "
          f"{summary['wasted_share']:.1%} of top-10 slots wasted (goal <= 5%)")
    print(f"throughput: {speed['whole_life_per_s']:,} events/s over an event's whole life "
          f"({speed['observe_and_5m_expiry_per_s']:,}/s observe + 5 min expiry) with the worker's collector "
          f"thresholds {tuple(GC_THRESHOLDS)}, {speed['default_gc']['whole_life_per_s']:,}/s with Python's "
          f"default {DEFAULT_GC}; goal 50,000; {speed['records_held']:,} records held")
    print(f"memory: {mem['bytes_per_tag']} B per tag + {mem['bytes_per_series']} B per (tag, region) series + "
          f"{mem['bytes_per_record']} B per tweet in the detail horizon + {mem['bytes_per_hour_summary']} B per "
          f"hourly summary; {mem['background_5min']['bytes_per_tracked_tag']:,} B per tracked tag after 5 min "
          f"of background ({mem['background_5min']['tags']:,} tags)")
    write_results("trending_quality", {"config": config.to_mapping(), "seeds": per_seed, "summary": summary,
                                       "throughput": speed, "memory": mem})
    return 0


def report(seed: int, res: dict[str, Any]) -> None:
    p, f, sl, st = res["planted"], res["faint"], res["slots"], res["stream"]
    print(f"seed {seed}: planted {p['within_30s']}/{p['bursts']} in the top 10 within 30 s ({p['recall_30s']:.0%}); "
          f"latency p50 {p['latency_p50_s']} s, p90 {p['latency_p90_s']} s, max {p['latency_max_s']} s; "
          f"faint {f['within_30s']}/{f['bursts']}")
    print(f"  top-10 slots: {sl['filled']} filled in {sl['lists']} lists (mean {sl['mean_fill']}); wasted "
          f"{sl['wasted_share']:.1%} (always-popular {sl['popular']}, steady {sl['steady']}, spam {sl['spam']}); "
          f"tags in a list: {res['tags']['entered_top10']}, {res['tags']['precision']:.0%} planted")
    print(f"  {st['events']:,} events, {st['tracker_events_per_s']:,}/s in the tracker, top() {st['top_ms']} ms, "
          f"{res['wall_s']} s wall")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
