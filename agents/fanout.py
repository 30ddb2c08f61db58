"""fanout agent: ingest.tweets -> Cassandra tweets, then home timelines by the hybrid policy."""

from __future__ import annotations

import time
from collections.abc import Sequence

import faust

from agents.runtime import Positions, Rejections, Runtime, run_batches
from pipeline.events import Event
from pipeline.fanout import Mode, active_readers
from pipeline.model import Tweet
from pipeline.topology import TopicSpec


def register(app: faust.App, rt: Runtime, topic: faust.TopicT, spec: TopicSpec) -> None:
    page_size = rt.topology.tunables.follower_page_size
    policy = rt.topology.tunables.fanout

    async def follower_count(author: int) -> int:
        cached = await rt.graph.follower_count(author)
        if cached is not None:
            return cached
        cass, _ = await rt.stores()
        count = (await cass.follower_counts([author])).get(author)
        return count.followers if count else 0

    async def deliver(tweet: Tweet) -> None:
        cass, timelines = await rt.stores()
        await timelines.push([(tweet.author_id, tweet.tweet_id)])  # your own home timeline
        mode = policy.mode(await follower_count(tweet.author_id))
        if mode is Mode.PULL:
            return  # readers merge it in at read time: O(1) writes however many followers
        async for followers in cass.follower_pages(tweet.author_id, page_size):
            if mode is Mode.PUSH_ACTIVE:
                seen = await rt.graph.last_reads(followers)
                followers = active_readers(followers, seen, time.time(), policy.activity_window_s)
            await timelines.push((f, tweet.tweet_id) for f in followers)

    async def handle(events: Sequence[Event], _positions: Positions) -> Rejections:
        cass, timelines = await rt.stores()
        tweets = [Tweet.from_event(e) for e in events if e.type == "tweet.created"]
        deleted = [(e.id_field("tweet_id"), e.actor, e.occurred_at) for e in events if e.type == "tweet.deleted"]
        # Truth first: once the tweet is in Cassandra a rebuild finds it even if a push is lost.
        await cass.save_tweets(tweets)
        await cass.delete_tweets(deleted)
        for tweet in tweets:
            await deliver(tweet)
        for tweet_id, author, _ms in deleted:
            await timelines.remove([(author, tweet_id)])
            async for followers in cass.follower_pages(author, page_size):
                await timelines.remove((f, tweet_id) for f in followers)
        return []

    @app.agent(topic, name="fanout")
    async def fanout_agent(stream: faust.StreamT) -> None:
        await run_batches(rt, stream, spec, handle, "fanout")
