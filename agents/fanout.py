"""fanout agent: tweets.moderated -> home timelines by the hybrid policy; replies and quotes also
become tweet.referenced events (counted on ingest.engagements), hashtags hashtags.observed records
(trending.hashtags), packed per partition: one record per partition and batch; and the
notifications those tweets cause (agents/notifications.py).

It reads what the moderation agent lets through (agents/moderation.py), which has already stored
the tweet: a tweet.created is a delivered tweet (allow or label, or restored by a moderator), a
tweet.deleted any deletion, and a tweet.moderated a delivered tweet a moderator took back. The
moderation agent has pushed the tweets it judged itself (a forwarded record lists them); this agent
pushes the others (restored ones, records of an earlier release).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import faust

from agents import notifications
from agents.batch_stats import stage, timed
from agents.delivery import deliver_all, for_each, withdraw
from agents.runtime import Positions, Rejections, Runtime, run_batches, side_by_side
from pipeline import forwarding
from pipeline.engagement import hashtag_observations, pack_observations, references
from pipeline.events import Event
from pipeline.model import Tweet
from pipeline.topology import TopicSpec

log = logging.getLogger("starling.fanout")

# (tweet, counts from now on?, event ms, source event id): what pipeline/engagement.py derives from.
Change = tuple[Tweet, bool, int, int]

# How often a worker prunes the readers' last-read set, and how long past the activity window a
# reader is kept in it: API hosts and workers stamp and compare with their own clocks.
PRUNE_ACTIVE_EVERY_S = 300.0
PRUNE_ACTIVE_SLACK_S = 3600


def register(app: faust.App, rt: Runtime, topic: faust.TopicT, spec: TopicSpec) -> None:
    trending_partitions = rt.topology.topic_for_event("hashtags.observed").partitions
    notify = notifications.step(rt)

    async def handle(events: Sequence[Event], _positions: Positions) -> Rejections:
        cass, _ = await rt.stores()
        created = [e for e in events if e.type == "tweet.created"]
        tweets = [Tweet.from_event(e) for e in created]
        deleted = [(e.id_field("tweet_id"), e.actor, e.occurred_at) for e in events if e.type == "tweet.deleted"]
        withheld = [e for e in events if e.type == "tweet.moderated" and not e.data["delivered"]]
        with stage("deletes"):
            stored = await cass.tweet_refs([t for t, _a, _ms in deleted] + [e.id_field("tweet_id") for e in withheld])
            await cass.delete_tweets(deleted)
            await rt.hot.tombstone_tweets(tweet_id for tweet_id, _author, _ms in deleted)
        # Delivery (what readers wait for) and what the batch derives (replies and quotes counted
        # by the agent owning the tweet they refer to, hashtags by the trending partition owning
        # the tag, notifications) go side by side: one waits on Redis while the other works or
        # waits on Kafka and Cassandra. Both are idempotent; if one fails the other is cancelled
        # and the batch runs again (runtime.retry).
        # The moderation agent has pushed most tweets itself (pipeline/forwarding.py).
        unpushed = [t for t, e in zip(tweets, created) if not forwarding.was_pushed(e)]
        await side_by_side(timed("deliver", deliver(unpushed, deleted, withheld)),
                           timed("derive", derive(events, tweets, stored)))
        return []

    async def deliver(tweets: list[Tweet], deleted: list[tuple[int, int, int]], withheld: list[Event]) -> None:
        await deliver_all(rt, ((t.author_id, t.tweet_id) for t in tweets))
        await for_each([(author, tweet_id) for tweet_id, author, _ms in deleted]
                       + [(e.id_field("author_id"), e.id_field("tweet_id")) for e in withheld], withdraw, rt)

    async def derive(events: Sequence[Event], tweets: list[Tweet], stored: dict[int, Tweet]) -> None:
        """The derived events (acknowledged before the batch's offsets are committed) and the
        notifications. A tweet that was never delivered (held or blocked, then deleted) never
        counted, so nothing is taken back."""
        cass, _ = await rt.stores()
        added: list[Change] = [(t, True, t.created_at, e.event_id)
                               for t, e in zip(tweets, (e for e in events if e.type == "tweet.created"))]
        gone: list[tuple[Event, Tweet]] = [(e, stored[e.id_field("tweet_id")]) for e in events
                                           if e.type in ("tweet.deleted", "tweet.moderated")
                                           and e.id_field("tweet_id") in stored]
        # A tweet.moderated reaching here means the tweet was delivered until then; a deleted one
        # counted only if it was delivered.
        changes = added + [(t, False, e.occurred_at, e.event_id) for e, t in gone
                           if e.type == "tweet.moderated" or t.delivered]
        regions = await rt.hot.regions({t.author_id for t, _p, _ms, _id in changes if "#" in t.text or "＃" in t.text},
                                       cass.get_users)
        observed = hashtag_observations(changes, regions)
        with stage("derive.emit"):
            await rt.emit(references(changes) + pack_observations(observed, trending_partitions))
        with stage("derive.notify"):
            await notify(events)  # mentions, replies, quotes of delivered tweets

    @app.agent(topic, name="fanout")
    async def fanout_agent(stream: faust.StreamT) -> None:
        await run_batches(rt, stream, spec, handle, "fanout")

    @app.timer(interval=PRUNE_ACTIVE_EVERY_S)
    async def forget_inactive_readers() -> None:
        """A reader whose last read is older than the activity window counts nowhere (pushes skip
        them, their timeline has expired): drop them from the last-read set, which
        would otherwise hold every reader ever. Idempotent, so every worker may run it."""
        try:
            await rt.stores()
            window = rt.topology.tunables.fanout.activity_window_s
            forgotten = await rt.graph.prune_active(time.time() - window - PRUNE_ACTIVE_SLACK_S)
            if forgotten:
                log.info("fanout: forgot %d readers inactive for over %d s", forgotten, window)
        except Exception:  # noqa: BLE001 - a timer must not take the worker down; the next tick retries
            log.exception("fanout: pruning the last-read set failed")
