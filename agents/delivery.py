"""Putting entries into home timelines, and taking them out, by the hybrid policy: shared by the
fan-out agent (tweets) and the engagement agent (retweets, which are timeline entries too)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from adapters.redis_store import recent_key, timeline_key
from agents.batch_stats import stage
from agents.runtime import Runtime
from pipeline.fanout import FollowerLists, Mode, appends, fetch_groups, spread

# Follower-list queries in flight at once when a batch misses the cache.
FETCH_CONCURRENCY = 16
# Authors per query when short lists are read several at a time: bounds the IN list the
# coordinator fans out.
FETCH_GROUP_MAX = 100


@dataclass(frozen=True, slots=True)
class Appends:
    """What a delivery writes: `sizes[i]` entries (in order, from `ids`) onto list `keys[i]`."""

    keys: list[str]
    sizes: npt.NDArray[np.int64]
    ids: npt.NDArray[np.int64]


async def deliver_all(rt: Runtime, items: Iterable[tuple[int, int]]) -> None:
    """Deliver (author, entry) pairs of one batch: every entry to its author's timeline and recent
    entries, and by the author's band to all followers, active followers, or nobody (pulled at
    read time). A replay appends the same entries again, which reads do not see
    (adapters/redis_store.py)."""
    await write_appends(rt, await plan_appends(rt, items))


async def write_appends(rt: Runtime, planned: Appends | None) -> None:
    """All of a delivery's appends in one pipeline."""
    if planned is None:
        return
    _, timelines = await rt.stores()
    with stage("push.write"):
        await timelines.push_lists(planned.keys, planned.sizes, planned.ids)


async def plan_appends(rt: Runtime, items: Iterable[tuple[int, int]]) -> Appends | None:
    """The appends that deliver (author, entry) pairs, by reading only: one Redis command reads
    every author's count and list generation, follower lists come from the worker's cache
    (Cassandra on a miss), and one more looks the followers up in the last-read set. Nothing is
    written (but caches of counts and lists), so it can run while the entries are being stored."""
    pairs = list(dict.fromkeys(items))
    if not pairs:
        return None
    cass, _ = await rt.stores()
    policy = rt.topology.tunables.fanout
    authors = sorted({a for a, _ in pairs})
    with stage("push.state"):
        state = await rt.graph.fanout_state(authors)
        counts = {a: c for a, (c, _gen) in state.items() if c is not None}
        uncached = [a for a in authors if a not in counts]
        if uncached:
            stored = await cass.follower_counts(uncached)
            filled = {a: stored[a].followers if a in stored else 0 for a in uncached}
            await rt.graph.fill_follower_counts(filled)
            counts.update(filled)
    modes = {a: policy.mode(counts[a]) for a in authors}
    pushed = [a for a in authors if modes[a] is not Mode.PULL]
    lists = rt.follower_lists  # this batch's, throughout: its indices are into lists.users
    with stage("push.followers"):
        followers = await follower_lists(rt, lists, {a: state[a][1] for a in pushed}, counts)
    rows = spread([(entry, modes[author], followers[author]) for author, entry in pairs if author in followers],
                  len(lists.users))
    # A push lands only on a built timeline, and the last-read set holds every reader whose timeline
    # is built (graph_cache._REPAIR_BEGIN): one score lookup for all pushed followers leaves out
    # those who have none (most followers of a small account, most of the time) and the middle
    # band's inactive ones. While the set is incomplete (lost, not repaired yet) it could leave out
    # a built timeline: then every follower is sent the entry and Redis skips the unbuilt timelines.
    now = time.time()
    last_read = np.full(len(rows.readers), now)
    if len(rows.readers):
        with stage("push.last_reads"):
            complete, seen = await rt.graph.last_reads_encoded(list(map(lists.users.encoded.__getitem__,
                                                                        rows.readers.tolist())))
        if complete:
            last_read = seen
        else:
            rt.repair_active_soon()
    to_followers = appends(rows, last_read, now, policy.activity_window_s)
    # The authors' own timelines and recent lists (built only for pulled authors) get every entry.
    own: dict[int, list[int]] = {}
    for author, entry in pairs:
        own.setdefault(author, []).append(entry)
    keys, sizes, ids = [], [], []
    for author, entries in own.items():
        entries.sort()
        for key in (timeline_key(author), recent_key(author)):
            keys.append(key)
            sizes.append(len(entries))
            ids += entries
    return Appends(keys + [timeline_key(r) for r in lists.ids(to_followers.readers).tolist()],
                   np.concatenate([np.array(sizes, dtype=np.int64), to_followers.sizes]),
                   np.concatenate([np.array(ids, dtype=np.int64), to_followers.entries]))


async def follower_lists(rt: Runtime, lists: FollowerLists, generations: dict[int, str],
                         counts: Mapping[int, int]) -> dict[int, npt.NDArray[np.int32]]:
    """Each author's followers (indices into lists.users), from the worker's cache (`lists`)
    when it holds them at the current generation, else read from Cassandra and cached under that
    generation, in paged queries of about a page of rows: short lists (by their follower
    `counts`) several to a query, a long one alone."""
    cass, _ = await rt.stores()
    page_size = rt.topology.tunables.follower_page_size
    out: dict[int, npt.NDArray[np.int32]] = {}
    missing = []
    for author, gen in generations.items():
        cached = lists.get(author, gen)
        if cached is None:
            missing.append(author)
        else:
            out[author] = cached
    groups = fetch_groups({a: counts.get(a, page_size) for a in missing}, page_size, FETCH_GROUP_MAX)
    sem = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def fetch(group: list[int]) -> None:
        async with sem:
            found = await cass.followers_of(group, page_size)
        for author in group:
            out[author] = lists.put(author, generations[author], found[author])

    await asyncio.gather(*(fetch(g) for g in groups))
    return out


async def withdraw(rt: Runtime, author: int, entry_id: int) -> None:
    """Remove an entry from its author's and every follower's timeline (idempotent ZREMs)."""
    cass, timelines = await rt.stores()
    await timelines.remove([(author, entry_id)], author=author)
    async for followers in cass.follower_pages(author, rt.topology.tunables.follower_page_size):
        await timelines.remove((f, entry_id) for f in followers)


# Withdrawals of one batch at once: their round trips to Cassandra and Redis overlap instead of
# queueing one entry behind another.
WITHDRAW_CONCURRENCY = 32


async def for_each(items: Iterable[tuple[int, int]], action: Callable[[Runtime, int, int], Awaitable[None]],
                   rt: Runtime) -> None:
    """Run an action for (author, entry) pairs concurrently, bounded; order is irrelevant (every
    write is idempotent)."""
    sem = asyncio.Semaphore(WITHDRAW_CONCURRENCY)

    async def one(author: int, entry: int) -> None:
        async with sem:
            await action(rt, author, entry)

    await asyncio.gather(*(one(a, e) for a, e in items))
