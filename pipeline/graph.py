"""Social-graph decisions over plain events."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

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
