"""engagement agent: ingest.engagements -> like and retweet facts in Cassandra, by event time; a
retweet also becomes a timeline entry (a `tweets` row by the retweeter) delivered to followers."""

from __future__ import annotations

from collections.abc import Sequence

import faust

from agents.delivery import deliver, for_each, withdraw
from agents.runtime import Positions, Rejections, Runtime, run_batches
from pipeline.engagement import like_facts, retweet_entries, retweet_facts
from pipeline.events import Event
from pipeline.topology import TopicSpec


def register(app: faust.App, rt: Runtime, topic: faust.TopicT, spec: TopicSpec) -> None:
    async def handle(events: Sequence[Event], _positions: Positions) -> Rejections:
        cass, _ = await rt.stores()
        facts = retweet_facts(events)
        created = retweet_entries(events)
        # Which entry each undo takes away: from this batch if it was created here, else looked up
        # before the facts are deleted (on a replay after they are gone, it was withdrawn already).
        undo_ms = {(t, u): ms for t, u, rid, ms in facts if rid is None}
        entry_of = await cass.retweet_ids(undo_ms)
        entry_of.update({(e.retweet_of, e.author_id): e.tweet_id for e in created if e.retweet_of is not None})
        undone = [(u, entry_of[(t, u)], ms) for (t, u), ms in undo_ms.items() if (t, u) in entry_of]
        await cass.save_tweets(created)
        await cass.delete_tweets((rid, user, ms) for user, rid, ms in undone)
        await rt.hot.tombstone_tweets(rid for _user, rid, _ms in undone)
        await cass.apply_likes(like_facts(events))
        await cass.apply_retweets(facts)
        await for_each(((e.author_id, e.tweet_id) for e in created), deliver, rt)
        await for_each(((user, rid) for user, rid, _ms in undone), withdraw, rt)
        return []

    @app.agent(topic, name="engagement")
    async def engagement_agent(stream: faust.StreamT) -> None:
        await run_batches(rt, stream, spec, handle, "engagement")
