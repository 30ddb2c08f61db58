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
