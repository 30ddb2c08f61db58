"""engagement agent: ingest.engagements -> like and retweet facts in Cassandra, by event time, and
exact like, retweet, reply and quote counts (pipeline/counts.py); a retweet also becomes a timeline
entry (a `tweets` row by the retweeter) delivered to followers; likes and retweets notify the
tweet's author (agents/notifications.py)."""

from __future__ import annotations

from collections.abc import Sequence

import faust

from agents.delivery import deliver_all, for_each, withdraw
from agents import notifications
from agents.runtime import Positions, Rejections, Runtime, failpoint, run_batches
from pipeline.counts import apply_changes
from pipeline.engagement import fact_changes, like_facts, retweet_entries, retweet_facts
from pipeline.events import Event
from pipeline.topology import TopicSpec


def register(app: faust.App, rt: Runtime, topic: faust.TopicT, spec: TopicSpec) -> None:
    notify = notifications.step(rt)
    async def handle(events: Sequence[Event], positions: Positions) -> Rejections:
        cass, _ = await rt.stores()
        await count(events, positions)
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
        await deliver_all(rt, ((e.author_id, e.tweet_id) for e in created))
        await for_each(((user, rid) for user, rid, _ms in undone), withdraw, rt)
        await notify(events)  # likes and retweets
        return []

    async def count(events: Sequence[Event], positions: Positions) -> None:
        """Exact counts (pipeline/counts.py): one read of the touched cells and count rows per batch,
        counts written before facts, then the Redis copy. A storm of likes on one tweet costs one
        count row write per batch, however many likes the batch holds."""
        changes = fact_changes(events, positions)
        if not changes:
            return
        cass, _ = await rt.stores()
        before = await cass.fact_states((c.tweet_id, c.kind, c.member) for c in changes)
        counts, written = apply_changes(changes, before, await cass.engagement_counts({c.tweet_id for c in changes}))
        await cass.save_engagement_counts(counts)  # first: the replay guard (pipeline/counts.py)
        failpoint("engagement.after_counts")
        await cass.write_facts(written)
        await rt.hot.put_counts(counts)

    @app.agent(topic, name="engagement")
    async def engagement_agent(stream: faust.StreamT) -> None:
        await run_batches(rt, stream, spec, handle, "engagement")
