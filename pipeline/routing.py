"""Which topic and key an event travels with (DESIGN.md decision 6)."""

from __future__ import annotations

from pipeline.events import Event
from pipeline.topology import Topology

# The id an event is partitioned by: None means the actor; otherwise a field of `data`.
KEY_FIELD: dict[str, str | None] = {
    "user.registered": None,
    "tweet.created": None,            # tweets by author id
    "follow.created": "followee_id",  # edges by the followed account
    "follow.removed": "followee_id",
}


def partition_key(event: Event) -> bytes:
    """The record key: the decimal id, so kcat users can type it."""
    field = KEY_FIELD[event.type]
    key_id = event.actor if field is None else event.id_field(field)
    return str(key_id).encode()


def topic_of(topology: Topology, event: Event) -> str:
    return topology.topic_for_event(event.type).name
