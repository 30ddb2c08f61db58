"""Putting an entry into home timelines, and taking it out, by the hybrid policy: shared by the
fan-out agent (tweets) and the engagement agent (retweets, which are timeline entries too)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable

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
    mode = policy.mode(await follower_count(rt, author))
    if mode is Mode.PULL:
        # Readers merge it in at read time: one write (the author's own timeline), however many followers.
        await timelines.push_to_readers([author], entry_id, author=author)
        return
    first = True
    async for followers in cass.follower_pages(author, rt.topology.tunables.follower_page_size):
        if mode is Mode.PUSH_ACTIVE:
            seen = await rt.graph.last_reads(followers)
            followers = active_readers(followers, seen, time.time(), policy.activity_window_s)
        await timelines.push_to_readers([author, *followers] if first else followers, entry_id,
                                         author=author if first else None)
        first = False
    if first:  # no followers at all
        await timelines.push_to_readers([author], entry_id, author=author)


async def withdraw(rt: Runtime, author: int, entry_id: int) -> None:
    """Remove an entry from its author's and every follower's timeline (idempotent ZREMs)."""
    cass, timelines = await rt.stores()
    await timelines.remove([(author, entry_id)], author=author)
    async for followers in cass.follower_pages(author, rt.topology.tunables.follower_page_size):
        await timelines.remove((f, entry_id) for f in followers)


# Entries of one batch delivered at once: their round trips to Cassandra and Redis overlap instead
# of queueing one tweet behind another (bench/fanout.py measured 28 ms per tweet in sequence).
DELIVERY_CONCURRENCY = 32


async def for_each(items: Iterable[tuple[int, int]], action: Callable[[Runtime, int, int], Awaitable[None]],
                   rt: Runtime) -> None:
    """Run deliver/withdraw for (author, entry) pairs concurrently, bounded; order is irrelevant
    (timeline scores are the entries' times, and every write is idempotent)."""
    sem = asyncio.Semaphore(DELIVERY_CONCURRENCY)

    async def one(author: int, entry: int) -> None:
        async with sem:
            await action(rt, author, entry)

    await asyncio.gather(*(one(a, e) for a, e in items))
