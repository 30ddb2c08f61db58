"""fanout agent: ingest.tweets -> Cassandra tweets, then home timelines by the hybrid policy; replies
and quotes also become tweet.referenced events on ingest.engagements (counted there)."""

from __future__ import annotations

from collections.abc import Sequence

import faust

from agents.delivery import deliver, for_each, withdraw
from agents.runtime import Positions, Rejections, Runtime, run_batches
from pipeline.engagement import hashtag_observations, references
from pipeline.events import Event
from pipeline.model import Tweet
from pipeline.topology import TopicSpec


def register(app: faust.App, rt: Runtime, topic: faust.TopicT, spec: TopicSpec) -> None:
    async def handle(events: Sequence[Event], _positions: Positions) -> Rejections:
        cass, _ = await rt.stores()
        tweets = [Tweet.from_event(e) for e in events if e.type == "tweet.created"]
        deleted = [(e.id_field("tweet_id"), e.actor, e.occurred_at) for e in events if e.type == "tweet.deleted"]
        # Truth first: once the tweet is in Cassandra a rebuild finds it even if a push is lost.
        await cass.save_tweets(tweets)
        stored = await cass.tweet_refs(tweet_id for tweet_id, _author, _ms in deleted)
        await cass.delete_tweets(deleted)
        await rt.hot.tombstone_tweets(tweet_id for tweet_id, _author, _ms in deleted)
        await for_each(((t.author_id, t.tweet_id) for t in tweets), deliver, rt)
        await for_each(((author, tweet_id) for tweet_id, author, _ms in deleted), withdraw, rt)
        # After delivery, which readers wait for: replies and quotes are counted by the agent owning
        # the tweet they refer to, hashtags by the trending partition owning the tag, both re-keyed
        # as derived events (acknowledged before the batch's offsets are committed).
        changes = ([(Tweet.from_event(e), True, e.occurred_at, e.event_id) for e in events if e.type == "tweet.created"]
                   + [(stored[e.id_field("tweet_id")], False, e.occurred_at, e.event_id) for e in events
                      if e.type == "tweet.deleted" and e.id_field("tweet_id") in stored])
        authors = await cass.get_users({t.author_id for t, _p, _ms, _id in changes if "#" in t.text or "＃" in t.text})
        await rt.emit(references(changes)
                      + hashtag_observations(changes, {u: user.region for u, user in authors.items()}))
        return []

    @app.agent(topic, name="fanout")
    async def fanout_agent(stream: faust.StreamT) -> None:
        await run_batches(rt, stream, spec, handle, "fanout")
