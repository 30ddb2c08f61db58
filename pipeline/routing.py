"""Which topic and key an event travels with (DESIGN.md decision 6)."""

from __future__ import annotations

from pipeline.events import Event
from pipeline.topology import Topology

# The id an event is partitioned by: None means the actor; otherwise a field of `data`.
KEY_FIELD: dict[str, str | None] = {
    "user.registered": None,
    "user.updated": None,
    "tweet.created": None,            # tweets by author id
    "tweet.deleted": None,
    "verdict.overridden": "author_id",  # a moderator's override follows the author's tweets
    "tweet.moderated": "author_id",    # verdicts: by the author, like the tweets they judge
    "like.created": "tweet_id",       # engagements by the tweet engaged with
    "like.removed": "tweet_id",
    "retweet.created": "tweet_id",
    "retweet.removed": "tweet_id",
    "tweet.referenced": "tweet_id",  # derived: replies and quotes by the tweet they count for
    "hashtag.observed": "tag",       # derived: hashtags by tag, for the trending agent
    "follow.created": "followee_id",  # graph edges by the account they point at
    "follow.removed": "followee_id",
    "block.created": "blocked_id",
    "block.removed": "blocked_id",
    "mute.created": "muted_id",
    "mute.removed": "muted_id",
}


def partition_key(event: Event) -> bytes:
    """The record key: the decimal id, so kcat users can type it."""
    field = KEY_FIELD[event.type]
    if field == "tag":
        return str(event.data["tag"]).encode()
    key_id = event.actor if field is None else event.id_field(field)
    return str(key_id).encode()


def topic_of(topology: Topology, event: Event) -> str:
    return topology.topic_for_event(event.type).name
