"""Packing the events the moderation agent lets through into tweets.forwarded records, and
unpacking them (pure).

A faust agent pays a fixed cost per record before any work of its own: one that does nothing
drains ~10,000-12,400 records/s on this 2-core machine (bench/fanout.py, its no-op bound), which
with one tweet per record capped the fan-out stage at about a third of what Redis could take. So
the moderation agent packs a batch's forwarded events per partition of tweets.moderated: the
partition their key (the author) maps to, so an author's events stay in order on one partition,
in the order the batch had them.

A record lists in `pushed` the tweets among its tweet.created events that the moderation agent
has put into home timelines itself (agents/moderation.py): unpacked, each of those says so (data
`pushed`), and the fanout agent does the rest of their work (counts, hashtags, notifications)
without pushing them again. Any other tweet.created (one a moderator restored, one an earlier
release forwarded, a benchmark's) is pushed by the fanout agent.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

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
# In a record: the tweets the moderation agent pushed; in an unpacked tweet.created: true.
PUSHED = "pushed"
# A tweet id in a record's `pushed` list, quoted, with its comma.
_PUSHED_ID_BYTES = 22


def pack(events: Sequence[Event], partitions: int, max_bytes: int = PACK_MAX_BYTES,
         max_events: int = PACK_MAX_EVENTS, pushed: Collection[int] = frozenset()) -> list[Event]:
    """tweets.forwarded records of `events`: per partition (of `partitions`), in their order, each
    record at most `max_events` events and about `max_bytes` (an event larger than that alone),
    listing which of its tweet.created events are `pushed` (tweet ids). A replay of the same batch
    packs the same records."""
    chunks: dict[int, list[list[Event]]] = {}
    sizes: dict[int, int] = {}
    for e in events:
        p = partition_for(partition_key(e), partitions)
        size = len(orjson.dumps(e.to_json())) + 1 + (_PUSHED_ID_BYTES if e.type == "tweet.created" else 0)
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
            data: dict[str, object] = {"partition": p, "events": [e.to_json() for e in part]}
            done = [e.data["tweet_id"] for e in part if e.type == "tweet.created" and e.id_field("tweet_id") in pushed]
            if done:
                data[PUSHED] = done
            out.append(Event(first.event_id, PACKED, 1, first.occurred_at, first.actor, data))
    return out


def unpacked(events: Iterable[Event]) -> list[Event]:
    """The events as their readers handle them: a tweets.forwarded record's events in its place
    (those its `pushed` list names marked so), any other event as it is."""
    out: list[Event] = []
    for e in events:
        if e.type != PACKED:
            out.append(e)
            continue
        pushed = set(e.data.get(PUSHED, ()))
        out += [Event(int(d["event_id"]), d["type"], d["version"], d["occurred_at"], int(d["actor"]),
                      {**d["data"], PUSHED: True} if d["type"] == "tweet.created" and d["data"]["tweet_id"] in pushed
                      else d["data"])
                for d in e.data["events"]]
    return out


def was_pushed(event: Event) -> bool:
    """Whether this unpacked tweet.created is already in its readers' timelines."""
    return bool(event.data.get(PUSHED, False))


def to_push(events: Sequence[Event], judged: Collection[int]) -> list[tuple[int, int]]:
    """(author, tweet) of the tweet.created events among `events` (what a moderation batch lets
    through, in order) that the moderation agent pushes itself: tweets it has just judged (in
    `judged`) that stay delivered to the batch's end. One deleted by a later event of the batch
    would only be taken out again. A tweet a moderator restores is left to the fanout agent: a
    withdrawal of it forwarded by an earlier batch may still be on its way there, and must not
    land after the push."""
    last: dict[int, str] = {}
    for e in events:
        last[e.id_field("tweet_id")] = e.type
    return list(dict.fromkeys((e.actor, e.id_field("tweet_id")) for e in events
                              if e.type == "tweet.created" and e.id_field("tweet_id") in judged
                              and last[e.id_field("tweet_id")] == "tweet.created"))
