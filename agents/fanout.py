"""fanout agent: ingest.tweets -> Cassandra tweets, then the followers' Redis home timelines."""

from __future__ import annotations

from collections.abc import Sequence

import faust

from agents.runtime import Runtime, run_batches
from pipeline.events import Event
from pipeline.model import Tweet
from pipeline.topology import TopicSpec


def register(app: faust.App, rt: Runtime, topic: faust.TopicT, spec: TopicSpec) -> None:
    page_size = rt.topology.tunables.follower_page_size

    async def handle(events: Sequence[Event]) -> None:
        cass, timelines = await rt.stores()
        tweets = [Tweet.from_event(e) for e in events if e.type == "tweet.created"]
        # Truth first: once the tweet is in Cassandra a rebuild finds it even if a push is lost.
        await cass.save_tweets(tweets)
        for tweet in tweets:
            await timelines.push([(tweet.author_id, tweet.tweet_id)])  # your own home timeline
            async for followers in cass.follower_pages(tweet.author_id, page_size):
                await timelines.push((f, tweet.tweet_id) for f in followers)

    @app.agent(topic, name="fanout")
    async def fanout_agent(stream: faust.StreamT) -> None:
        await run_batches(rt, stream, spec, handle, "fanout")
