"""Social-graph decisions over plain events."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pipeline.events import Event

FOLLOW_TYPES = {"follow.created": True, "follow.removed": False}


def follow_edges(events: Iterable[Event]) -> Iterator[tuple[int, int, bool, int]]:
    """(follower, followee, now following?, event ms) for each follow change; self-follows dropped."""
    for e in events:
        following = FOLLOW_TYPES.get(e.type)
        if following is None:
            continue
        followee = e.id_field("followee_id")
        if followee != e.actor:
            yield e.actor, followee, following, e.occurred_at
