"""trending agent: trending.hashtags (hashtags packed per partition of their tag) -> one tracker per partition -> ranked
snapshots in Redis, on the `trends` topic and in Cassandra's trend history.

Every observation of a tag meets on one partition, so each partition's tracker (pipeline/trending.py)
holds complete counts for its tags, and the worldwide top K is the top K of the partitions' top
K lists (a tag is in exactly one). Every `trending_publish_s` each worker ranks its partitions into
Redis (trp:{partition}); the owner of partition 0 merges them into trends:{region}:{window}, produces one
snapshot per region to `trends` and appends it to Cassandra. Trackers are checkpointed to Redis
(trs:{partition}) so a restart or rebalance resumes their baselines; the events since the last
commit are replayed on top, and the tracker counts each tweet once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import faust
import orjson

from agents.runtime import Positions, Rejections, Runtime, run_batches
from pipeline.events import Event
from pipeline.topology import TopicSpec
from pipeline.trending import SnapshotMismatch, Trend, TrendingTracker

log = logging.getLogger("starling.trending")

GLOBAL = "global"
# Partial rankings outlive a few missed publications, not a dead worker's partitions.
PARTIAL_TTL_S = 60
# A checkpoint of a busy tracker is tens of MB and blocks the loop for about a second
# (docs/TRENDING.md): every 5 minutes. After a restart, what was counted since the last one is
# missing until it slides out of the windows (trending is approximate by design, DESIGN.md).
CHECKPOINT_EVERY_S = 300.0


def partial_key(partition: int) -> str:
    return f"trp:{partition}"


def checkpoint_key(partition: int) -> str:
    return f"trs:{partition}"


def trends_key(region: str, window: str) -> str:
    return f"trends:{region}:{window}"


def trend_json(t: Trend) -> dict[str, Any]:
    return {"tag": t.tag, "score": round(t.score, 3), "count": t.count, "tweets": t.tweets, "authors": t.authors,
            "expected": round(t.expected, 3), "samples": [str(s) for s in t.samples]}


def merge(partials: Sequence[dict[str, list[dict[str, Any]]]], k: int) -> dict[str, list[dict[str, Any]]]:
    """The top k per "region|window" across partitions' lists (each tag is in one partition)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for partial in partials:
        for key, trends in partial.items():
            out.setdefault(key, []).extend(trends)
    return {key: sorted(ts, key=lambda t: (-t["score"], t["tag"]))[:k] for key, ts in out.items()}


async def rank_into(redis: Any, trackers: Mapping[int, TrendingTracker], started: Mapping[int, float],
                    assignment: Callable[[], set[int]], now: float, checkpoint: bool) -> None:
    """Each tracker's top K per region and window into Redis (partial_key), and with `checkpoint`
    its snapshot (checkpoint_key), for the partitions still assigned when they are written.

    The snapshots are built off the event loop (a hot tag's records would hold it up for 0.1-1.7
    s), and a rebalance can take a partition away meanwhile: its new owner restores the checkpoint
    at assignment and writes its own from then on, which this worker's older state must not
    overwrite. So the assignment is read again after the build, with no await between that and
    the pipeline's send. What is left is a revocation during the send itself, milliseconds against
    the build's up to seconds; closing it would take a fence in Redis (the group generation with
    each write)."""
    partials: dict[int, bytes] = {}
    builders = {}
    for partition, tr in trackers.items():
        tr.advance(now)
        lists = {f"{region or GLOBAL}|{window}": [trend_json(t) for t in tr.top(region, window, now)]
                 for region in (None, *tr.regions()) for window in tr.windows()}
        partials[partition] = orjson.dumps({"since": started[partition], "lists": lists})
        if checkpoint:
            builders[partition] = tr.snapshot_later()
    # The trackers' state is copied above (a few ms); the snapshots are built and encoded here.
    snapshots = await asyncio.to_thread(lambda: {p: orjson.dumps(b()) for p, b in builders.items()}) if builders else {}
    still = assignment()
    pipe = redis.pipeline(transaction=False)
    for partition, raw in partials.items():
        if partition in still:
            pipe.set(partial_key(partition), raw, ex=PARTIAL_TTL_S)
    for partition, raw in snapshots.items():
        if partition in still:
            pipe.set(checkpoint_key(partition), raw)
    await pipe.execute()


def apply(tr: TrendingTracker, e: Event) -> int:
    """Count (or take back) what one record of trending.hashtags observed; returns how many
    observations it held. Records of the retired one-hashtag type are still read."""
    if e.type == "hashtags.observed":
        observations = e.data["observations"]
        observe, remove = tr.observe, tr.remove
        for o in observations:
            (observe if o["present"] else remove)(o["tag"], o.get("region"), int(o["author_id"]),
                                                  int(o["tweet_id"]), o["at"] / 1000)
        return len(observations)
    d = e.data
    args = (d["tag"], d.get("region"), e.actor, int(d["tweet_id"]), e.occurred_at / 1000)
    if d["present"]:
        tr.observe(*args)
    else:
        tr.remove(*args)
    return 1


def register(app: faust.App, rt: Runtime, topic: faust.TopicT, spec: TopicSpec, trends_topic: faust.TopicT) -> None:
    config = rt.topology.tunables.trending
    every_s = rt.topology.tunables.trending_publish_s
    topic_name = rt.settings.topic(spec.name)
    trackers: dict[int, TrendingTracker] = {}
    started: dict[int, float] = {}  # partition -> when its tracker's history begins
    last_checkpoint = {"at": time.time()}

    async def tracker(partition: int) -> TrendingTracker:
        found = trackers.get(partition)
        if found is not None:
            return found
        raw = await rt.hot.redis.get(checkpoint_key(partition))
        now = time.time()
        made, since = TrendingTracker(config, now), now
        if raw is not None:
            try:
                data = orjson.loads(raw)
                made, since = TrendingTracker.restore(config, data), float(data["origin"])
                made.advance(now)
            except SnapshotMismatch:
                log.warning("trending checkpoint of partition %d has another geometry: starting afresh", partition)
        trackers[partition], started[partition] = made, since
        return made

    async def handle(events: Sequence[Event], positions: Positions) -> Rejections:
        for e, (partition, _offset) in zip(events, positions):
            apply(await tracker(partition), e)
        return []

    @app.agent(topic, name="trending")
    async def trending_agent(stream: faust.StreamT) -> None:
        await run_batches(rt, stream, spec, handle, "trending")

    @app.timer(interval=every_s)
    async def rank_partitions() -> None:
        """Each worker: its partitions' top K per region and window, into Redis."""
        try:
            await _rank()
        except Exception:  # noqa: BLE001 - a timer must not take the worker down; next tick retries
            log.exception("trending: ranking failed")

    def assignment() -> set[int]:
        return {tp.partition for tp in app.consumer.assignment() if tp.topic == topic_name}

    async def _rank() -> None:
        assigned = assignment()
        for gone in set(trackers) - assigned:
            del trackers[gone]  # another worker owns it now (and restores its checkpoint)
        for partition in assigned:
            await tracker(partition)  # from assignment on, so a quiet partition warms up too
        if not trackers:
            return
        now = time.time()
        checkpoint = now - last_checkpoint["at"] >= CHECKPOINT_EVERY_S
        await rank_into(rt.hot.redis, trackers, started, assignment, now, checkpoint)
        if checkpoint:
            last_checkpoint["at"] = now

    @app.timer(interval=every_s)
    async def publish() -> None:
        """The worker owning partition 0 (exactly one at a time; faust's leader election is off in
        this app): merge the partitions' lists, publish per region, keep the history."""
        if not any(tp.partition == 0 and tp.topic == topic_name for tp in app.consumer.assignment()):
            return
        try:
            await _publish()
        except Exception:  # noqa: BLE001 - as above
            log.exception("trending: publishing failed")

    async def _publish() -> None:
        cass, _ = await rt.stores()
        n = rt.topology.topics[spec.name].partitions
        partials = [orjson.loads(r) for r in await rt.hot.redis.mget([partial_key(p) for p in range(n)]) if r is not None]
        merged = merge([p["lists"] for p in partials], config.top_k)
        if not merged:
            return
        now = time.time()
        at_ms = int(now * 1000)
        # A window is warming up until every partition's tracker has its length (and warm-up) behind it.
        youngest = max((p["since"] for p in partials), default=now) if len(partials) == n else now
        pipe = rt.hot.redis.pipeline(transaction=False)
        by_region: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for key, trends in merged.items():
            region, window = key.split("|", 1)
            by_region.setdefault(region, {})[window] = trends
            length = next(w.length_s for w in config.windows if w.name == window)
            warming = now - youngest < length + config.warmup_s
            pipe.set(trends_key(region, window), orjson.dumps({"at": at_ms, "warming_up": warming, "trends": trends}),
                     ex=PARTIAL_TTL_S * 10)
        await pipe.execute()
        for region, windows in sorted(by_region.items()):
            value = orjson.dumps({"region": region, "at": at_ms, "windows": windows})
            fut = await trends_topic.send(key=region.encode(), value=value)
            await fut
        await cass.save_trend_history(at_ms, by_region)
