"""fanout agent: ingest.tweets -> Cassandra tweets, then the followers' Redis home timelines."""

from __future__ import annotations

from collections.abc import Sequence

import faust

from agents.runtime import Rejections, Runtime, run_batches
from pipeline.events import Event
from pipeline.model import Tweet
from pipeline.topology import TopicSpec


def register(app: faust.App, rt: Runtime, topic: faust.TopicT, spec: TopicSpec) -> None:
    page_size = rt.topology.tunables.follower_page_size

    async def handle(events: Sequence[Event]) -> Rejections:
        cass, timelines = await rt.stores()
        tweets = [Tweet.from_event(e) for e in events if e.type == "tweet.created"]
        deleted = [(e.id_field("tweet_id"), e.actor, e.occurred_at) for e in events if e.type == "tweet.deleted"]
        # Truth first: once the tweet is in Cassandra a rebuild finds it even if a push is lost.
        await cass.save_tweets(tweets)
        await cass.delete_tweets(deleted)
        for tweet in tweets:
            await timelines.push([(tweet.author_id, tweet.tweet_id)])  # your own home timeline
            async for followers in cass.follower_pages(tweet.author_id, page_size):
                await timelines.push((f, tweet.tweet_id) for f in followers)
        for tweet_id, author, _ms in deleted:
            await timelines.remove([(author, tweet_id)])
            async for followers in cass.follower_pages(author, page_size):
                await timelines.remove((f, tweet_id) for f in followers)
        return []

    @app.agent(topic, name="fanout")
    async def fanout_agent(stream: faust.StreamT) -> None:
        await run_batches(rt, stream, spec, handle, "fanout")
