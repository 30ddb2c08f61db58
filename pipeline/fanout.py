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
    pair, as arrays in entry order, followers as dense indices (UserIndex): one lookup of the
    distinct followers' last reads then decides every row (appends). Arrays, not Python objects
    per row: a batch of 4,000 tweets on a mean-100 graph is 400,000 rows."""
    readers: npt.NDArray[np.intp]  # the distinct followers (dense indices), ascending
    reader_of: npt.NDArray[np.int32]  # per row: its follower's position in `readers`
    entries: npt.NDArray[np.int64]  # per row: the entry (ascending)
    window_only: npt.NDArray[np.bool_]  # per row: the author is in the middle band


def spread(pushed: Sequence[tuple[int, Mode, npt.ArrayLike]], users: int) -> Spread:
    """The rows of (entry, its author's mode, its author's followers as dense indices below
    `users`) for each pushed entry. Linear in the rows and `users`: a mask finds the distinct
    followers; nothing is sorted but the entries."""
    pushed = sorted(pushed, key=lambda p: p[0])
    lists = [np.asarray(followers, dtype=np.int32) for _e, _m, followers in pushed]
    sizes = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    rows = np.concatenate(lists) if lists else np.empty(0, np.int32)
    held = np.zeros(users, dtype=np.bool_)
    held[rows] = True
    readers = np.flatnonzero(held)
    slot = np.empty(users, dtype=np.int32)
    slot[readers] = np.arange(len(readers), dtype=np.int32)
    entries = np.repeat(np.fromiter((e for e, _m, _f in pushed), dtype=np.int64, count=len(pushed)), sizes)
    window_only = np.repeat(np.fromiter((m is Mode.PUSH_ACTIVE for _e, m, _f in pushed), dtype=np.bool_,
                                        count=len(pushed)), sizes)
    return Spread(readers, slot[rows], entries, window_only)


def stable_order(keys: npt.NDArray[np.integer]) -> npt.NDArray[np.intp]:
    """np.argsort(keys, kind="stable") for keys in [0, 2**32), in linear time: numpy sorts 16-bit
    keys by radix and wider ones by timsort, so two 16-bit passes (low half, then high half)."""
    if not len(keys) or int(keys.max()) < 1 << 16:
        return np.argsort(keys.astype(np.uint16), kind="stable")
    order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    return order[np.argsort((keys[order] >> 16).astype(np.uint16), kind="stable")]


@dataclass(frozen=True)
class Appends:
    """What one batch appends to followers' timelines: per timeline, its new entries."""
    readers: npt.NDArray[np.intp]  # the timelines' readers (dense indices, as Spread.readers), ascending
    sizes: npt.NDArray[np.int64]  # how many entries each gets
    entries: npt.NDArray[np.int64]  # every timeline's entries, one after the other, each oldest first


def appends(rows: Spread, last_read_s: npt.NDArray[np.float64], now_s: float, window_s: int) -> Appends:
    """The rows that land, by their follower's last read (`last_read_s`, one per `rows.readers`,
    epoch seconds, NaN if not in the last-read set, so no built timeline): below the middle band
    every follower in the set, however long ago they read (clocks differ: the timeline's expiry
    decides), in the middle band only those who read within the window; grouped by timeline, in
    entry order within each (a stable radix sort of the rows that land, most of a batch's rows
    being followers with no built timeline)."""
    seen = last_read_s[rows.reader_of]
    with np.errstate(invalid="ignore"):  # NaN compares False: not in the set
        lands = (seen == seen) & (~rows.window_only | (now_s - seen <= window_s))
    reader_of, entries = rows.reader_of[lands], rows.entries[lands]
    order = stable_order(reader_of)
    reader_of, entries = reader_of[order], entries[order]
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


class UserIndex:
    """Dense indices 0, 1, 2, ... for the user ids in the fan-out worker's follower lists, in the
    order first seen, with each id as Redis's wire format sends it (a bulk string). A batch's
    rows are then small integers: its distinct followers are found, and its rows grouped by
    follower, in time linear in the rows (spread, appends) instead of by sorting 64-bit ids, and
    its followers' ids go out to Redis from encodings made once (GraphCache.last_reads). About
    150 bytes per user held (the dict, the id, its encoding)."""

    def __init__(self) -> None:
        self._index: dict[int, int] = {}
        self._ids = np.empty(1024, dtype=np.int64)
        self.encoded: list[bytes] = []  # by index

    def __len__(self) -> int:
        return len(self.encoded)

    @property
    def ids(self) -> npt.NDArray[np.int64]:
        """The user id of each index."""
        return self._ids[:len(self.encoded)]

    def indices(self, users: Iterable[int]) -> npt.NDArray[np.int32]:
        """The index of each user, new users given the next ones (in the order first seen). The
        lookups go through map() rather than a loop of dict.get: for lists of 100 drawn from
        100,000 users, 176-267 ns per follower against 329-472 (3 interleaved rounds), most of
        what is left being the dict's cache misses."""
        users = users if isinstance(users, list) else list(users)
        index = self._index
        found = list(map(index.get, users))
        if None in found:
            n = len(self.encoded)
            new = list(dict.fromkeys(u for u, at in zip(users, found) if at is None))
            index.update(zip(new, range(n, n + len(new))))
            if n + len(new) > len(self._ids):
                grown = np.empty(max(2 * len(self._ids), n + len(new)), dtype=np.int64)
                grown[:n] = self._ids[:n]
                self._ids = grown
            self._ids[n:n + len(new)] = new
            self.encoded += [b"$%d\r\n%d\r\n" % (len(str(u)), u) for u in new]
            found = list(map(index.__getitem__, users))
        return np.array(found, dtype=np.intc) if found else np.empty(0, np.intc)


class FollowerLists:
    """Follower lists of push-mode authors kept in the fan-out worker, each under the generation it
    was read at, least recently used dropped first beyond `budget` ids in all; the followers are
    held as indices into `users` (4 bytes each), which maps them back to user ids.

    The graph agent gives an author's list a new generation (an unrepeatable token in Redis) after
    every follow change of theirs is in Cassandra, and before the backfill that change triggers;
    a list is used only while the generation the fan-out reads with its batch equals the one it
    was cached under. So a cached list is never older than Cassandra was when the generation was
    set, and a tweet missed by a list read just before a follow is caught by that follow's
    backfill (docs/ARCHITECTURE.md, "Follower lists").
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.users = UserIndex()
        self._lists: SizedLRU[int, tuple[str, npt.NDArray[np.int32]]] = SizedLRU(budget)

    @property
    def size(self) -> int:
        """Ids held, all lists together."""
        return self._lists.size

    def __len__(self) -> int:
        return len(self._lists)

    def get(self, author: int, generation: str) -> npt.NDArray[np.int32] | None:
        cached = self._lists.peek(author)
        if cached is None or cached[0] != generation:
            return None
        self._lists.get(author)  # a use
        return cached[1]

    def put(self, author: int, generation: str, followers: Iterable[int]) -> npt.NDArray[np.int32]:
        indices = self.users.indices(followers)
        self._lists.put(author, (generation, indices), len(indices))
        return indices

    def ids(self, indices: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
        ids: npt.NDArray[np.int64] = self.users.ids[indices]
        return ids

    @property
    def spent(self) -> bool:
        """Whether the index holds more users than the budget holds ids: users of lists long
        dropped fill it, and the owner starts a new FollowerLists for the next batch (a batch
        takes one FollowerLists and keeps it throughout, its indices being this one's)."""
        return len(self.users) > self.budget
