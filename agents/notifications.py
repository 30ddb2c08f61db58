"""notification agents: mentions, replies and quotes (ingest.tweets), likes and retweets
(ingest.engagements), follows (ingest.follows) -> per-user notifications in Cassandra.

One agent per topic, all with this handler, none the topic's owner: bad records and unresolved
references are the owning agent's business (agents/runtime.py). A row per (recipient, causing
event) makes replays rewrite the same rows (pipeline/notifications.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import faust

from agents.runtime import Positions, Rejections, Runtime, run_batches
from pipeline import notifications
from pipeline.events import Event
from pipeline.topology import TopicSpec
from pipeline.visibility import can_see_author

# A reply can reach this agent before the fanout agent has stored the tweet it answers (the owner
# checked that tweet exists, so it is being written): look again after these pauses.
PARENT_RETRY_S = (0.2, 1.0, 3.0)


def register(app: faust.App, rt: Runtime, topic: faust.TopicT, spec: TopicSpec, name: str) -> None:
    async def handle(events: Sequence[Event], _positions: Positions) -> Rejections:
        cass, _ = await rt.stores()
        tweet_ids, handles = notifications.needs(events)
        authors = {e.id_field("tweet_id"): e.actor for e in events if e.type == "tweet.created"}
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
            return []
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
        return []

    @app.agent(topic, name=name)
    async def notifications_agent(stream: faust.StreamT) -> None:
        await run_batches(rt, stream, spec, handle, name, owner=False)
