"""engagement agent: ingest.engagements -> like and retweet facts in Cassandra, by event time."""

from __future__ import annotations

from collections.abc import Sequence

import faust

from agents.runtime import Positions, Rejections, Runtime, run_batches
from pipeline.engagement import like_facts, retweet_facts
from pipeline.events import Event
from pipeline.topology import TopicSpec


def register(app: faust.App, rt: Runtime, topic: faust.TopicT, spec: TopicSpec) -> None:
    async def handle(events: Sequence[Event], _positions: Positions) -> Rejections:
        cass, _ = await rt.stores()
        await cass.apply_likes(like_facts(events))
        await cass.apply_retweets(retweet_facts(events))
        return []

    @app.agent(topic, name="engagement")
    async def engagement_agent(stream: faust.StreamT) -> None:
        await run_batches(rt, stream, spec, handle, "engagement")
