"""Notifications, pure: which events notify whom, and how a page of them is grouped.

One row per (recipient, causing event): the event's id is the notification's id, so a replayed
event rewrites the same row (idempotent) and ids order notifications by time. Grouping happens when
reading, the way users expect: likes of one tweet become "A and 12 others liked your tweet", as do
retweets of one tweet and new followers; mentions, replies and quotes stay one per tweet.

Nobody is notified of their own actions, nor of anything by an account they block, that blocks
them, or that they mute (checked when the notification is made and again when it is read, since
a block may come later), nor of a tweet they may not see (a protected account they don't follow).
Undoing a like or retweet leaves its notification (as on Twitter).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.entities import extract
from pipeline.events import Event

GROUPED_KINDS = frozenset({"like", "retweet", "follow"})
# Actors shown by name in a group ("A, B and 12 others").
SHOWN_ACTORS = 3


@dataclass(frozen=True, slots=True)
class Notification:
    user_id: int              # the recipient
    notification_id: int      # the id of the event that caused it
    kind: str                 # mention | reply | quote | like | retweet | follow
    actor_id: int
    tweet_id: int | None      # the tweet it is about (liked, retweeted; the reply, quote or mention)
    group_key: str

    @property
    def carries_tweet_by_actor(self) -> bool:
        """Mentions, replies and quotes show the actor's tweet: its visibility rules apply."""
        return self.kind in ("mention", "reply", "quote")


def group_key(kind: str, tweet_id: int | None) -> str:
    if kind == "follow":
        return "follow"
    return f"{kind}:{tweet_id}"


def needs(events: Iterable[Event]) -> tuple[set[int], set[str]]:
    """(tweet ids whose authors must be known, mentioned handles to resolve, casefolded)."""
    tweets: set[int] = set()
    handles: set[str] = set()
    for e in events:
        if e.type == "tweet.created":
            for name in ("reply_to", "quote_of"):
                if name in e.data:
                    tweets.add(e.id_field(name))
            handles.update(m.text.casefold() for m in extract(e.data["text"]).mentions)
        elif e.type in ("like.created", "retweet.created"):
            tweets.add(e.id_field("tweet_id"))
    return tweets, handles


def for_event(e: Event, tweet_authors: Mapping[int, int], handle_owners: Mapping[str, int]) -> list[Notification]:
    """The notifications one event causes (before block, mute and visibility checks)."""
    out: list[Notification] = []

    def add(recipient: int | None, kind: str, tweet_id: int | None) -> None:
        if recipient is None or recipient == e.actor:
            return
        if any(n.user_id == recipient for n in out):
            return  # one notification per recipient per event: a reply that mentions its parent's author
        out.append(Notification(recipient, e.event_id, kind, e.actor, tweet_id, group_key(kind, tweet_id)))

    if e.type == "tweet.created":
        tweet_id = e.id_field("tweet_id")
        if "reply_to" in e.data:
            add(tweet_authors.get(e.id_field("reply_to")), "reply", tweet_id)
        if "quote_of" in e.data:
            add(tweet_authors.get(e.id_field("quote_of")), "quote", tweet_id)
        for mention in extract(e.data["text"]).mentions:
            add(handle_owners.get(mention.text.casefold()), "mention", tweet_id)
    elif e.type in ("like.created", "retweet.created"):
        tweet_id = e.id_field("tweet_id")
        add(tweet_authors.get(tweet_id), e.type.split(".")[0], tweet_id)
    elif e.type == "follow.created":
        add(e.id_field("followee_id"), "follow", None)
    return out


@dataclass
class Group:
    kind: str
    tweet_id: int | None
    latest_id: int
    actors: list[int] = field(default_factory=list)   # distinct, newest first
    notification_ids: list[int] = field(default_factory=list)
    unread: bool = False

    @property
    def others(self) -> int:
        """How many actors beyond the ones shown by name."""
        return max(0, len(self.actors) - SHOWN_ACTORS)


def group(rows: Sequence[Notification], read_up_to: int,
          visible: Callable[[Notification], bool] = lambda _n: True) -> list[Group]:
    """Group a newest-first page of notifications; groups ordered by their newest member."""
    groups: dict[str, Group] = {}
    order: list[Group] = []
    for n in rows:
        if not visible(n):
            continue
        key = n.group_key if n.kind in GROUPED_KINDS else f"{n.kind}:{n.notification_id}"
        g = groups.get(key)
        if g is None:
            g = Group(kind=n.kind, tweet_id=n.tweet_id, latest_id=n.notification_id)
            groups[key] = g
            order.append(g)
        if n.actor_id not in g.actors:
            g.actors.append(n.actor_id)
        g.notification_ids.append(n.notification_id)
        g.unread = g.unread or n.notification_id > read_up_to
    return order
