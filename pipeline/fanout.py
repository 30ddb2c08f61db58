"""The hybrid fan-out policy (DESIGN.md decision 5), pure.

    followers:  0 ........ push_all_below ........ push_active_below ........ ∞
    mode:       PUSH_ALL                PUSH_ACTIVE                 PULL
                every follower's        only followers who read     nobody: merged into
                built timeline          within the activity window  readers' pages at read time

Fan-out only ever appends to timelines that are built (adapters/redis_store.py), and a timeline
expires when its reader has not read it for the activity window, so both push modes deliver to
the same readers. Both look their followers up in the last-read set first (one sorted-set lookup
per batch), which holds every reader whose timeline is built: the first band sends to every
follower in it, however long ago they read, the middle band only to those who read within the
window; neither sends a write to a follower who has no timeline to write to. A celebrity's tweet
costs O(1) writes: its author's own timeline, nothing else.
"""

from __future__ import annotations

import enum
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pipeline.lru import SizedLRU


class Mode(enum.Enum):
    PUSH_ALL = "push_all"
    PUSH_ACTIVE = "push_active"
    PULL = "pull"


@dataclass(frozen=True)
class Policy:
    push_all_below: int
    push_active_below: int
    activity_window_s: int

    def mode(self, followers: int) -> Mode:
        if followers < self.push_all_below:
            return Mode.PUSH_ALL
        if followers < self.push_active_below:
            return Mode.PUSH_ACTIVE
        return Mode.PULL

    def is_pulled(self, followers: int) -> bool:
        return self.mode(followers) is Mode.PULL


def active_readers(followers: Sequence[int], last_read_s: Sequence[float | None], now_s: float,
                   window_s: int) -> list[int]:
    """The followers whose last home-timeline read is within the window."""
    return [f for f, seen in zip(followers, last_read_s) if seen is not None and now_s - seen <= window_s]


def push_targets(mode: Mode, followers: Sequence[int], last_read_s: Mapping[int, float | None], now_s: float,
                 window_s: int) -> list[int]:
    """The followers a push-mode author's entry is sent to, by their last reads (None: not in the
    last-read set, so no built timeline): in the middle band the active readers, below it every
    follower who may have a built timeline, however long ago they read (clocks differ: the
    timeline's expiry decides)."""
    if mode is Mode.PUSH_ACTIVE:
        return active_readers(followers, [last_read_s[f] for f in followers], now_s, window_s)
    return [f for f in followers if last_read_s[f] is not None]


def fetch_groups(sizes: Mapping[int, int], rows: int, most: int) -> list[list[int]]:
    """Authors grouped for reading their follower lists (`sizes`: expected followers), smallest
    first: a group holds at most `most` authors whose lists add up to at most `rows`, or a single
    author (whose list may be longer)."""
    groups: list[list[int]] = []
    total = 0
    for author in sorted(sizes, key=lambda a: (sizes[a], a)):
        n = sizes[author]
        if not groups or total + n > rows or len(groups[-1]) >= most:
            groups.append([])
            total = 0
        groups[-1].append(author)
        total += n
    return groups


class FollowerLists:
    """Follower lists of push-mode authors kept in the fan-out worker, each under the generation it
    was read at, least recently used dropped first beyond `budget` ids in all.

    The graph agent gives an author's list a new generation (an unrepeatable token in Redis) after
    every follow change of theirs is in Cassandra, and before the backfill that change triggers;
    a list is used only while the generation the fan-out reads with its batch equals the one it
    was cached under. So a cached list is never older than Cassandra was when the generation was
    set, and a tweet missed by a list read just before a follow is caught by that follow's
    backfill (docs/ARCHITECTURE.md, "Follower lists").
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._lists: SizedLRU[int, tuple[str, array[int]]] = SizedLRU(budget)

    @property
    def size(self) -> int:
        """Ids held, all lists together."""
        return self._lists.size

    def __len__(self) -> int:
        return len(self._lists)

    def get(self, author: int, generation: str) -> array[int] | None:
        cached = self._lists.peek(author)
        if cached is None or cached[0] != generation:
            return None
        self._lists.get(author)  # a use
        return cached[1]

    def put(self, author: int, generation: str, followers: Iterable[int]) -> array[int]:
        ids = array("q", followers)
        self._lists.put(author, (generation, ids), len(ids))
        return ids
