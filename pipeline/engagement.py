"""Engagement events as facts: one absolute state per (tweet, user), never a delta."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pipeline.counts import FactChange
from pipeline.entities import extract
from pipeline.events import Event
from pipeline.model import Tweet
from pipeline.routing import partition_for


def like_facts(events: Iterable[Event]) -> list[tuple[int, int, bool, int]]:
    """(tweet, user, liked afterwards?, event ms) per like or unlike."""
    return [(e.id_field("tweet_id"), e.actor, e.type == "like.created", e.occurred_at)
            for e in events if e.type in ("like.created", "like.removed")]


def retweet_facts(events: Iterable[Event]) -> list[tuple[int, int, int | None, int]]:
    """(tweet, user, retweet id or None when undone, event ms) per retweet or undo."""
    return [(e.id_field("tweet_id"), e.actor,
             e.id_field("retweet_id") if e.type == "retweet.created" else None, e.occurred_at)
            for e in events if e.type in ("retweet.created", "retweet.removed")]


def retweet_entries(events: Iterable[Event]) -> list[Tweet]:
    """The timeline entries retweets create: a row by the retweeter pointing at the original."""
    return [Tweet(tweet_id=e.id_field("retweet_id"), author_id=e.actor, text="", reply_to=None,
                  quote_of=None, created_at=e.occurred_at, retweet_of=e.id_field("tweet_id"))
            for e in events if e.type == "retweet.created"]


_FACT_KIND = {"like.created": "likes", "like.removed": "likes", "retweet.created": "retweets",
              "retweet.removed": "retweets"}


def fact_changes(events: Sequence[Event], positions: Sequence[tuple[int, int]]) -> list[FactChange]:
    """Every engagement event as a fact change (pipeline/counts.py), with its ingest position.
    Write times are the events' times in microseconds, as for every other table."""
    out: list[FactChange] = []
    for e, (partition, offset) in zip(events, positions):
        ts_us = e.occurred_at * 1000
        if e.type in _FACT_KIND:
            out.append(FactChange(e.id_field("tweet_id"), _FACT_KIND[e.type], e.actor,
                                  e.type.endswith(".created"), ts_us, partition, offset))
        elif e.type == "tweet.referenced":
            kind = "replies" if e.data["kind"] == "reply" else "quotes"
            out.append(FactChange(e.id_field("tweet_id"), kind, e.id_field("ref_id"), bool(e.data["present"]),
                                  ts_us, partition, offset))
    return out


def references(changes: Iterable[tuple[Tweet, bool, int, int]]) -> list[Event]:
    """The tweet.referenced events implied by stored or deleted tweets, given as (tweet, stored?
    (False: deleted), event ms, source event id). A derived event takes its source event's id and
    time, so a replay derives identical events."""
    out: list[Event] = []
    for t, present, ms, source_id in changes:
        for kind, parent in (("reply", t.reply_to), ("quote", t.quote_of)):
            if parent is not None:
                out.append(Event(source_id, "tweet.referenced", 1, ms, t.author_id,
                                 {"tweet_id": str(parent), "ref_id": str(t.tweet_id), "kind": kind, "present": present}))
    return out


def hashtag_observations(changes: Iterable[tuple[Tweet, bool, int, int]],
                         regions: Mapping[int, str | None]) -> list[tuple[int, dict[str, Any]]]:
    """What trending counts of delivered or deleted tweets, given as (tweet with its text,
    delivered? (False: deleted), event ms, source event id): each hashtag once per tweet, by its
    counting key, with the tweet's time and its author's region (`regions` maps authors to it),
    each with its source event id."""
    out: list[tuple[int, dict[str, Any]]] = []
    for t, present, _ms, source_id in changes:
        if t.retweet_of is not None or not t.text:
            continue
        region = regions.get(t.author_id)
        for key in dict.fromkeys(h.key for h in extract(t.text).hashtags):
            o: dict[str, Any] = {"tag": key, "tweet_id": str(t.tweet_id), "author_id": str(t.author_id),
                                 "at": t.created_at, "present": present}
            if region:
                o["region"] = region
            out.append((source_id, o))
    return out


# A packed record stays well under the topics' max_event_bytes (64 KiB) and the schema's 1,000.
PACK_MAX_BYTES = 32_768
PACK_MAX_OBSERVATIONS = 1000
# What an observation adds to a record beyond its tag and region: field names, ids, punctuation.
_OBSERVATION_OVERHEAD = 130


def pack_observations(observations: Sequence[tuple[int, dict[str, Any]]], partitions: int) -> list[Event]:
    """hashtags.observed records: the observations of each partition of trending.hashtags (the one
    the tag's key maps to), in their order, a few hundred per record. Each record takes its first
    observation's source event id, author and time; a replay of the same batch packs the same."""
    by_partition: dict[int, list[list[tuple[int, dict[str, Any]]]]] = {}
    sizes: dict[int, int] = {}
    for source_id, o in observations:
        p = partition_for(str(o["tag"]).encode(), partitions)
        size = _OBSERVATION_OVERHEAD + len(str(o["tag"]).encode()) + len(str(o.get("region", "")).encode())
        chunks = by_partition.setdefault(p, [[]])
        if chunks[-1] and (sizes[p] + size > PACK_MAX_BYTES or len(chunks[-1]) >= PACK_MAX_OBSERVATIONS):
            chunks.append([])
            sizes[p] = 0
        chunks[-1].append((source_id, o))
        sizes[p] = sizes.get(p, 0) + size
    out: list[Event] = []
    for p, chunks in sorted(by_partition.items()):
        for chunk in chunks:
            source_id, first = chunk[0]
            out.append(Event(source_id, "hashtags.observed", 1, first["at"], int(first["author_id"]),
                             {"partition": p, "observations": [o for _id, o in chunk]}))
    return out
