"""Packing the events the moderation agent lets through into tweets.forwarded records, and
unpacking them (pure).

A faust agent pays a fixed cost per record before any work of its own: one that does nothing
drains ~10,000-12,400 records/s on this 2-core machine (bench/fanout.py, its no-op bound), which
with one tweet per record capped the fan-out stage at about a third of what Redis could take. So
the moderation agent packs a batch's forwarded events per partition of tweets.moderated: the
partition their key (the author) maps to, so an author's events stay in order on one partition,
in the order the batch had them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson

from pipeline.events import Event
from pipeline.routing import partition_for, partition_key

PACKED = "tweets.forwarded"
# Events and bytes per record: well under the 64 KiB an agent accepts (max_event_bytes) and what
# one record's JSON costs to parse in one go.
PACK_MAX_EVENTS = 500
PACK_MAX_BYTES = 48_000
# The record's own envelope and fields around its events, at most.
_RECORD_OVERHEAD = 200


def pack(events: Sequence[Event], partitions: int, max_bytes: int = PACK_MAX_BYTES,
         max_events: int = PACK_MAX_EVENTS) -> list[Event]:
    """tweets.forwarded records of `events`: per partition (of `partitions`), in their order, each
    record at most `max_events` events and about `max_bytes` (an event larger than that alone).
    A replay of the same batch packs the same records."""
    chunks: dict[int, list[list[Event]]] = {}
    sizes: dict[int, int] = {}
    for e in events:
        p = partition_for(partition_key(e), partitions)
        size = len(orjson.dumps(e.to_json())) + 1
        parts = chunks.setdefault(p, [[]])
        if parts[-1] and (sizes[p] + size > max_bytes - _RECORD_OVERHEAD or len(parts[-1]) >= max_events):
            parts.append([])
            sizes[p] = 0
        parts[-1].append(e)
        sizes[p] = sizes.get(p, 0) + size
    out = []
    for p, parts in sorted(chunks.items()):
        for part in parts:
            first = part[0]
            out.append(Event(first.event_id, PACKED, 1, first.occurred_at, first.actor,
                             {"partition": p, "events": [e.to_json() for e in part]}))
    return out


def unpacked(events: Iterable[Event]) -> list[Event]:
    """The events as their readers handle them: a tweets.forwarded record's events in its place,
    any other event as it is."""
    out: list[Event] = []
    for e in events:
        if e.type != PACKED:
            out.append(e)
            continue
        out += [Event(int(d["event_id"]), d["type"], d["version"], d["occurred_at"], int(d["actor"]), d["data"])
                for d in e.data["events"]]
    return out
