"""Exact engagement counts under at-least-once delivery, pure (DESIGN.md decision 2).

Every like, retweet, reply and quote is a *fact*: one (tweet, kind, member) cell holding present or
absent, written with the event's time as its Cassandra write timestamp, so the cell ends in the
state of the latest event whatever the order of arrival (last write wins, never a delta). A count
is derived from the facts: the number of present cells, kept as an absolute value per tweet.

The count row is maintained by the one agent partition that owns the tweet (engagements are keyed
by tweet id, replies and quotes are re-keyed to their parent), as `before + flips`, where a flip is
an event that changes its cell's state. Replays after a crash must not flip twice, so the row also
holds the (partition, offset) of the last event it includes, and the agent writes the counts
*before* the facts:

- crash after the counts, before the facts: the replayed events are at or below the guard, so
  they only move the in-memory state (their facts are then written) and are not counted again;
- crash after both: the facts already hold the new state, so nothing flips;
- an event past the guard is counted once, against the state all earlier events left.

Cassandra's rule for two writes with the same timestamp is mirrored: the greater value wins, and
present (true) is greater than absent (false).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

KINDS = ("likes", "retweets", "replies", "quotes")


@dataclass(frozen=True)
class FactChange:
    tweet_id: int
    kind: str          # one of KINDS
    member: int        # the user (likes, retweets) or the reply / quote tweet (replies, quotes)
    present: bool
    ts_us: int         # the event's time: the cell's write timestamp
    partition: int
    offset: int


@dataclass(frozen=True)
class FactState:
    present: bool
    ts_us: int


@dataclass(frozen=True)
class Counts:
    values: Mapping[str, int] = field(default_factory=dict)
    partition: int = -1
    offset: int = -1

    def get(self, kind: str) -> int:
        return self.values.get(kind, 0)


def wins(new: FactState, old: FactState | None) -> bool:
    """Whether a write replaces the cell's state under last-write-wins (Cassandra's tie rule)."""
    if old is None:
        return True
    if new.ts_us != old.ts_us:
        return new.ts_us > old.ts_us
    return new.present and not old.present


def apply_changes(changes: Iterable[FactChange], before: Mapping[tuple[int, str, int], FactState],
                  counts: Mapping[int, Counts]) -> tuple[dict[int, Counts], dict[tuple[int, str, int], FactState]]:
    """New counts for the tweets touched by `changes` (in offset order) and the facts' new states.

    `before` holds the cells' stored states (absent keys: never written). Only events past their
    tweet's guard are counted; every event moves the state.
    """
    state: dict[tuple[int, str, int], FactState] = dict(before)
    out: dict[int, Counts] = {}
    written: dict[tuple[int, str, int], FactState] = {}
    for c in changes:
        key = (c.tweet_id, c.kind, c.member)
        old = state.get(key)
        new = FactState(c.present, c.ts_us)
        delta = 0
        if wins(new, old):
            was = old.present if old is not None else False
            delta = int(c.present) - int(was)
            state[key] = new
            written[key] = new
        current = out.get(c.tweet_id) or counts.get(c.tweet_id) or Counts(partition=c.partition)
        if c.partition == current.partition and c.offset <= current.offset:
            continue  # counted before a crash; its state change is tracked above
        values = dict(current.values)
        values[c.kind] = max(0, values.get(c.kind, 0) + delta)
        out[c.tweet_id] = replace(current, values=values, partition=c.partition, offset=c.offset)
    return out, written


def ground_truth(changes: Iterable[FactChange]) -> dict[int, dict[str, int]]:
    """What the counts must be: the present cells after last-write-wins over all events, counted.
    Independent of arrival order, duplicates and crashes (the tests compare against it)."""
    cells: dict[tuple[int, str, int], FactState] = {}
    for c in changes:
        key = (c.tweet_id, c.kind, c.member)
        new = FactState(c.present, c.ts_us)
        if wins(new, cells.get(key)):
            cells[key] = new
    truth: dict[int, dict[str, int]] = {}
    for (tweet, kind, _member), s in cells.items():
        per = truth.setdefault(tweet, dict.fromkeys(KINDS, 0))
        per[kind] += int(s.present)
    return truth
