"""Engagement events as facts: one absolute state per (tweet, user), never a delta."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.events import Event
from pipeline.model import Tweet


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
