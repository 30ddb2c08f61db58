"""Home-timeline arithmetic: merging newest-first id lists and cutting cursor pages."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from itertools import islice

# Page sizes: 20 by default like Twitter's v1.1 API; never more than 100 per request (OWASP API4).
DEFAULT_PAGE = 20
MAX_PAGE = 100


def merge_newest(lists: Iterable[Sequence[int]], limit: int) -> list[int]:
    """The `limit` largest distinct ids across newest-first lists, newest first.

    Snowflake ids are time-ordered, so the largest id is the newest tweet.
    """
    merged = heapq.merge(*lists, reverse=True)
    out: list[int] = []
    last: int | None = None
    for tweet_id in merged:
        if tweet_id != last:
            out.append(tweet_id)
            last = tweet_id
            if len(out) >= limit:
                break
    return out


def page(ids: Iterable[int], limit: int, max_id: int | None, since_id: int | None) -> list[int]:
    """Newest-first ids with since_id < id <= max_id, at most `limit` of them."""
    chosen = (i for i in ids if (max_id is None or i <= max_id) and (since_id is None or i > since_id))
    return list(islice(chosen, limit))


def newest_first(members: Iterable[str | int], skip: str) -> list[int]:
    """The distinct ids of a timeline list's members (oldest first, as appended; a replayed push
    may have appended one twice), newest first, without the `skip` marker (the sentinel)."""
    return sorted({int(m) for m in members if m != skip}, reverse=True)


def merged_oldest_first(current: Iterable[str | int], ids: Iterable[int], cap: int, skip: str) -> list[int]:
    """A timeline list rewritten with `ids` merged in: its distinct ids, oldest first, the newest
    `cap` of them."""
    merged = sorted({int(m) for m in current if m != skip} | set(ids))
    return merged[-cap:] if cap > 0 else []
