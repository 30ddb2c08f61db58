"""Referential checks: which users and tweets an event refers to, and whether they exist.

Prefetch, then decide: `needs` lists the ids a batch refers to, the agent loads them in two
batched reads, and `check` decides each event over that snapshot. Events earlier in the same
batch count (a reply to a tweet created a moment before, in the same batch, is fine).

Only events that create something need their targets to exist. Removing a fact (unlike, undo a
retweet, unfollow, unblock, unmute) is accepted whatever the target's state: it is harmless and
must stay replayable after the target is gone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline.events import Event

UNKNOWN_REFERENCE = "unknown_reference"
NOT_OWNER = "not_owner"

# Derived by an agent from events already checked (docs/EVENTS.md): nothing to look up again.
DERIVED = frozenset({"tweet.referenced", "hashtag.observed", "hashtags.observed", "tweet.moderated", "tweets.forwarded"})

# Which data field names a user that must exist, per event type.
_USER_TARGETS = {"follow.created": "followee_id", "block.created": "blocked_id", "mute.created": "muted_id"}
# Which data fields name tweets that must exist (and not be deleted), per event type.
_TWEET_TARGETS = {
    "tweet.created": ("reply_to", "quote_of"),
    "tweet.deleted": ("tweet_id",),
    "like.created": ("tweet_id",),
    "retweet.created": ("tweet_id",),
    "verdict.overridden": ("tweet_id",),
}


@dataclass(frozen=True, slots=True)
class TweetState:
    author_id: int
    deleted: bool


@dataclass(frozen=True, slots=True)
class Problem:
    reason: str
    detail: str


def needs(events: Iterable[Event]) -> tuple[set[int], set[int]]:
    """(user ids, tweet ids) the events refer to."""
    users: set[int] = set()
    tweets: set[int] = set()
    for e in events:
        if e.type in DERIVED:
            continue
        if e.type != "user.registered":
            users.add(e.actor)
        target = _USER_TARGETS.get(e.type)
        if target:
            users.add(e.id_field(target))
        for name in _TWEET_TARGETS.get(e.type, ()):
            if name in e.data:
                tweets.add(e.id_field(name))
    return users, tweets


def check_batch(events: Iterable[Event], users: set[int],
                tweets: Mapping[int, TweetState]) -> list[Problem | None]:
    """One verdict per event, in order; events earlier in the batch are visible to later ones."""
    known_users = set(users)
    known_tweets = dict(tweets)
    verdicts: list[Problem | None] = []
    for e in events:
        problem = _check(e, known_users, known_tweets)
        verdicts.append(problem)
        if problem is None:
            _apply(e, known_users, known_tweets)
    return verdicts


def _check(e: Event, users: set[int], tweets: Mapping[int, TweetState]) -> Problem | None:
    if e.type in DERIVED:
        return None
    if e.type != "user.registered" and e.actor not in users:
        return Problem(UNKNOWN_REFERENCE, f"actor user {e.actor} is not registered")
    target = _USER_TARGETS.get(e.type)
    if target and e.id_field(target) not in users:
        return Problem(UNKNOWN_REFERENCE, f"{target} {e.id_field(target)} is not a registered user")
    for name in _TWEET_TARGETS.get(e.type, ()):
        if name not in e.data:
            continue
        state = tweets.get(e.id_field(name))
        if e.type == "tweet.deleted":
            if state is None:
                return Problem(UNKNOWN_REFERENCE, f"tweet {e.id_field(name)} does not exist")
            if state.author_id != e.actor:
                return Problem(NOT_OWNER, f"tweet {e.id_field(name)} belongs to user {state.author_id}")
        elif state is None or state.deleted:
            return Problem(UNKNOWN_REFERENCE, f"{name} {e.id_field(name)} does not exist or was deleted")
        elif e.type == "verdict.overridden" and state.author_id != e.id_field("author_id"):
            # Keyed by author_id: a wrong one would reach a partition without the tweet's history.
            return Problem(NOT_OWNER, f"tweet {e.id_field(name)} belongs to user {state.author_id}, "
                                      f"not author_id {e.id_field('author_id')}")
    return None


def _apply(e: Event, users: set[int], tweets: dict[int, TweetState]) -> None:
    if e.type == "user.registered":
        users.add(e.actor)
    elif e.type == "tweet.created":
        tweets[e.id_field("tweet_id")] = TweetState(author_id=e.actor, deleted=False)
    elif e.type == "tweet.deleted":
        tweets[e.id_field("tweet_id")] = TweetState(author_id=e.actor, deleted=True)


def retry_delay(attempt: int, delays_s: tuple[float, ...]) -> float | None:
    """Delay before re-delivery number `attempt + 1`, or None when retries are exhausted."""
    return delays_s[attempt] if 0 <= attempt < len(delays_s) else None
