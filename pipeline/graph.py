"""Social-graph decisions over plain events."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from pipeline.events import Event

# event type -> (edge kind, the data field naming the target, does the edge exist afterwards?)
EDGE_EVENTS = {
    "follow.created": ("follow", "followee_id", True),
    "follow.removed": ("follow", "followee_id", False),
    "block.created": ("block", "blocked_id", True),
    "block.removed": ("block", "blocked_id", False),
    "mute.created": ("mute", "muted_id", True),
    "mute.removed": ("mute", "muted_id", False),
}

Edge = tuple[int, int, bool, int]  # (source, target, present afterwards?, event ms)


def edges_by_kind(events: Iterable[Event]) -> dict[str, list[Edge]]:
    """Edge changes grouped by kind (follow, block, mute); edges to oneself are dropped."""
    out: dict[str, list[Edge]] = {}
    for e in events:
        spec = EDGE_EVENTS.get(e.type)
        if spec is None:
            continue
        kind, field, present = spec
        target = e.id_field(field)
        if target != e.actor:
            out.setdefault(kind, []).append((e.actor, target, present, e.occurred_at))
    return out


def follow_edges(events: Iterable[Event]) -> Iterator[Edge]:
    """Just the follow changes."""
    yield from edges_by_kind(events).get("follow", [])


@dataclass(frozen=True, slots=True)
class FollowerCount:
    """A followee's exact follower count and the last ingest offset it includes.

    The count row is written before the edges of a batch, and edges are always (re)written, so
    after a crash the replayed events below `offset` are not counted again while their edges
    still land. Keyed by followee, the source partition is the same for every follow of them.
    """

    followers: int
    partition: int
    offset: int


def apply_follow_counts(changes: Sequence[tuple[Edge, int, int]], edges_before: set[tuple[int, int]],
                        counts: dict[int, FollowerCount]) -> dict[int, FollowerCount]:
    """New counts for the followees touched by `changes` ((edge, partition, offset), in order).

    `edges_before` holds the (follower, followee) pairs that existed before this batch. A change is
    counted only if its offset is past the followee's guard and it flips the edge's state.
    """
    state = set(edges_before)
    out: dict[int, FollowerCount] = {}
    for (follower, followee, present, _ms), partition, offset in changes:
        current = out.get(followee) or counts.get(followee) or FollowerCount(0, partition, -1)
        pair = (follower, followee)
        delta = 0
        if present and pair not in state:
            state.add(pair)
            delta = 1
        elif not present and pair in state:
            state.discard(pair)
            delta = -1
        if offset <= current.offset and partition == current.partition:
            continue  # counted before a crash (its state change is still tracked above)
        out[followee] = FollowerCount(max(0, current.followers + delta), partition, offset)
    return out


def timeline_changes(edges: dict[str, list[Edge]]) -> list[tuple[str, int, int]]:
    """What each edge change does to cached home timelines: (action, reader, author), in order.

    remove: the author's tweets leave the reader's timeline (unfollow; mute; block, both ways).
    backfill: the author's recent tweets enter it (follow; unmute or unblock, if still following).
    """
    out: list[tuple[str, int, int]] = []
    for kind, changes in edges.items():
        for source, target, present, _ms in changes:
            if kind == "follow":
                out.append(("backfill" if present else "remove", source, target))
            elif kind == "mute":
                out.append(("remove" if present else "backfill_if_following", source, target))
            elif kind == "block":
                if present:
                    out += [("remove", source, target), ("remove", target, source)]
                else:
                    out += [("backfill_if_following", source, target), ("backfill_if_following", target, source)]
    return out
