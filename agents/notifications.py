"""Notifications: mentions, replies and quotes (tweets.moderated), likes and retweets
(ingest.engagements), follows (ingest.follows) -> per-user notifications in Cassandra.

Not an agent of its own: the agent owning each of those topics (fanout, engagement, graph) ends
its batch with this step, so every topic has exactly one reader in the worker. Two agents on one
topic each hold a reference to every record, and faust's rebalance waited for one that was never
acked (docs/ARCHITECTURE.md); one reader also decodes each record once. A row per (recipient,
causing event) makes replays rewrite the same rows (pipeline/notifications.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from agents.runtime import Runtime
from pipeline import notifications
from pipeline.events import Event
from pipeline.visibility import can_see_author

# A referenced tweet may be found by the owner's reference check yet not be readable here at once
# (its write still in flight): look again after these pauses.
PARENT_RETRY_S = (0.2, 1.0, 3.0)


def step(rt: Runtime) -> Callable[[Sequence[Event]], Awaitable[None]]:
    """The notifications a batch of events causes, written (called by the topic's owner)."""

    async def notify(events: Sequence[Event]) -> None:
        cass, _ = await rt.stores()
        tweet_ids, handles = notifications.needs(events)
        # The authors of the batch's own tweets, when a reply or quote in it needs one (most
        # batches have none to find: then nothing is looked up per tweet).
        authors = {e.id_field("tweet_id"): e.actor for e in events if e.type == "tweet.created"} if tweet_ids else {}
        for pause in (0.0, *PARENT_RETRY_S):
            missing = tweet_ids - authors.keys()
            if not missing:
                break
            await asyncio.sleep(pause)
            authors.update({t: s.author_id for t, s in (await cass.tweet_states(missing)).items()})
        handle_list = sorted(handles)
        owners_found = await asyncio.gather(*(cass.user_id_for_handle(h) for h in handle_list))
        owners = {h: uid for h, uid in zip(handle_list, owners_found) if uid is not None}

        rows = [n for e in events for n in notifications.for_event(e, authors, owners)]
        if not rows:
            return
        recipients = sorted({n.user_id for n in rows})
        viewers = dict(zip(recipients, await asyncio.gather(*(rt.hot.viewer(r, cass.viewer) for r in recipients))))
        actors = await cass.get_users({n.actor_id for n in rows if n.carries_tweet_by_actor})

        def allowed(n: notifications.Notification) -> bool:
            viewer = viewers[n.user_id]
            if n.actor_id in viewer.hidden:  # blocked either way, or muted
                return False
            if n.carries_tweet_by_actor:  # the recipient must be able to see the tweet itself
                actor = actors.get(n.actor_id)
                return actor is not None and can_see_author(viewer, n.actor_id, actor.protected)
            return True

        await cass.save_notifications(n for n in rows if allowed(n))

    return notify
