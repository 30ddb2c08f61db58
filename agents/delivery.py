"""Putting an entry into home timelines, and taking it out, by the hybrid policy: shared by the
fan-out agent (tweets) and the engagement agent (retweets, which are timeline entries too)."""

from __future__ import annotations

import time

from agents.runtime import Runtime
from pipeline.fanout import Mode, active_readers


async def follower_count(rt: Runtime, author: int) -> int:
    cached = await rt.graph.follower_count(author)
    if cached is not None:
        return cached
    cass, _ = await rt.stores()
    count = (await cass.follower_counts([author])).get(author)
    return count.followers if count else 0


async def deliver(rt: Runtime, author: int, entry_id: int) -> None:
    cass, timelines = await rt.stores()
    policy = rt.topology.tunables.fanout
    await timelines.push([(author, entry_id)])  # your own home timeline
    mode = policy.mode(await follower_count(rt, author))
    if mode is Mode.PULL:
        return  # readers merge it in at read time: O(1) writes however many followers
    async for followers in cass.follower_pages(author, rt.topology.tunables.follower_page_size):
        if mode is Mode.PUSH_ACTIVE:
            seen = await rt.graph.last_reads(followers)
            followers = active_readers(followers, seen, time.time(), policy.activity_window_s)
        await timelines.push((f, entry_id) for f in followers)


async def withdraw(rt: Runtime, author: int, entry_id: int) -> None:
    """Remove an entry from its author's and every follower's timeline (idempotent ZREMs)."""
    cass, timelines = await rt.stores()
    await timelines.remove([(author, entry_id)])
    async for followers in cass.follower_pages(author, rt.topology.tunables.follower_page_size):
        await timelines.remove((f, entry_id) for f in followers)
