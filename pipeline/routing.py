"""Which topic and key an event travels with (DESIGN.md decision 6)."""

from __future__ import annotations

from aiokafka.partitioner import murmur2  # type: ignore[import-untyped]

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
    "hashtag.observed": "tag",       # derived, retired: one hashtag by tag (still read)
    "hashtags.observed": "partition",  # derived: hashtags packed per partition of their tags
    "tweets.forwarded": "partition",  # derived: what moderation lets through, packed per partition
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
    if field == "partition":
        return str(event.data["partition"]).encode()
    key_id = event.actor if field is None else event.id_field(field)
    return str(key_id).encode()


def topic_of(topology: Topology, event: Event) -> str:
    return topology.topic_for_event(event.type).name


def explicit_partition(event: Event) -> int | None:
    """The partition an event is produced to when its key does not choose it (packed records)."""
    return int(event.data["partition"]) if KEY_FIELD[event.type] == "partition" else None


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (Java's, aiokafka's, librdkafka's murmur2_random)
    gives a key: murmur2 of its bytes, sign bit cleared, modulo the partition count."""
    return (int(murmur2(key)) & 0x7FFFFFFF) % partitions
