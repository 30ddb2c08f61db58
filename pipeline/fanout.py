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

import numpy as np
import numpy.typing as npt

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


@dataclass(frozen=True)
class Spread:
    """A batch's pushed entries against their authors' followers, one row per (follower, entry)
    pair, as arrays sorted by follower, then entry: one lookup of the distinct followers' last
    reads then decides every row (appends). Arrays, not Python objects per row: a batch of 1,000
    tweets on a mean-100 graph is 100,000 rows."""
    readers: npt.NDArray[np.int64]  # the distinct followers, ascending
    reader_of: npt.NDArray[np.intp]  # per row: its follower's index in `readers` (ascending)
    entries: npt.NDArray[np.int64]  # per row: the entry (ascending within a follower's rows)
    window_only: npt.NDArray[np.bool_]  # per row: the author is in the middle band


def spread(pushed: Sequence[tuple[int, Mode, Sequence[int]]]) -> Spread:
    """The rows of (entry, its author's mode, its author's followers) for each pushed entry."""
    pushed = sorted(pushed, key=lambda p: p[0])  # so that one stable sort by follower leaves entries in order
    lists = [np.asarray(followers, dtype=np.int64) for _e, _m, followers in pushed]
    sizes = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    followers = np.concatenate(lists) if lists else np.empty(0, np.int64)
    order = np.argsort(followers, kind="stable")
    followers = followers[order]
    first = np.diff(followers, prepend=np.int64(-1)) != 0 if len(followers) else np.empty(0, np.bool_)
    entries = np.repeat(np.fromiter((e for e, _m, _f in pushed), dtype=np.int64, count=len(pushed)), sizes)[order]
    window_only = np.repeat(np.fromiter((m is Mode.PUSH_ACTIVE for _e, m, _f in pushed), dtype=np.bool_,
                                        count=len(pushed)), sizes)[order]
    return Spread(followers[first], np.cumsum(first) - 1, entries, window_only)


@dataclass(frozen=True)
class Appends:
    """What one batch appends to followers' timelines: per timeline, its new entries."""
    readers: npt.NDArray[np.int64]  # the timelines' readers, ascending
    sizes: npt.NDArray[np.int64]  # how many entries each gets
    entries: npt.NDArray[np.int64]  # every timeline's entries, one after the other, each oldest first


def appends(rows: Spread, last_read_s: npt.NDArray[np.float64], now_s: float, window_s: int) -> Appends:
    """The rows that land, by their follower's last read (`last_read_s`, one per `rows.readers`,
    epoch seconds, NaN if not in the last-read set, so no built timeline): below the middle band
    every follower in the set, however long ago they read (clocks differ: the timeline's expiry
    decides), in the middle band only those who read within the window; grouped by timeline (the
    rows' order already is)."""
    seen = last_read_s[rows.reader_of]
    with np.errstate(invalid="ignore"):  # NaN compares False: not in the set
        lands = (seen == seen) & (~rows.window_only | (now_s - seen <= window_s))
    reader_of, entries = rows.reader_of[lands], rows.entries[lands]
    starts = np.flatnonzero(np.diff(reader_of, prepend=-1)) if len(reader_of) else np.empty(0, np.intp)
    sizes = np.diff(np.append(starts, len(reader_of))).astype(np.int64)
    return Appends(rows.readers[reader_of[starts]], sizes, entries)


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
