"""Engagement events as facts: one absolute state per (tweet, user), never a delta."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.events import Event


def like_facts(events: Iterable[Event]) -> list[tuple[int, int, bool, int]]:
    """(tweet, user, liked afterwards?, event ms) per like or unlike."""
    return [(e.id_field("tweet_id"), e.actor, e.type == "like.created", e.occurred_at)
            for e in events if e.type in ("like.created", "like.removed")]


def retweet_facts(events: Iterable[Event]) -> list[tuple[int, int, int | None, int]]:
    """(tweet, user, retweet id or None when undone, event ms) per retweet or undo."""
    return [(e.id_field("tweet_id"), e.actor,
             e.id_field("retweet_id") if e.type == "retweet.created" else None, e.occurred_at)
            for e in events if e.type in ("retweet.created", "retweet.removed")]
