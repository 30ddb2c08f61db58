"""The domain's plain data: users and tweets as the views store and serve them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.events import Event


# The verdicts whose tweets reach timelines, counts, trends and notifications (Action.delivered).
DELIVERED = frozenset({"allow", "label"})


@dataclass(frozen=True, slots=True)
class User:
    user_id: int
    handle: str
    display_name: str
    bio: str
    protected: bool
    region: str | None
    created_at: int  # epoch ms

    @classmethod
    def from_event(cls, event: Event) -> User:
        d = event.data
        return cls(user_id=event.actor, handle=d["handle"], display_name=d["display_name"],
                   bio=d.get("bio", ""), protected=bool(d.get("protected", False)),
                   region=d.get("region"), created_at=event.occurred_at)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.user_id, "id_str": str(self.user_id), "handle": self.handle,
                "display_name": self.display_name, "bio": self.bio, "protected": self.protected}


@dataclass(frozen=True, slots=True)
class Tweet:
    tweet_id: int
    author_id: int
    text: str
    reply_to: int | None
    quote_of: int | None
    created_at: int  # epoch ms
    media: tuple[dict[str, str], ...] = ()
    retweet_of: int | None = None  # set on a retweet entry: the tweet it shows
    # Its moderation verdict (pipeline/moderation.py Action codes): allow and label are delivered,
    # hide and block are seen by nobody but the author.
    moderation: str = "allow"

    @property
    def delivered(self) -> bool:
        return self.moderation in DELIVERED

    @property
    def sensitive(self) -> bool:
        return self.moderation == "label"

    @classmethod
    def from_event(cls, event: Event) -> Tweet:
        d = event.data
        return cls(tweet_id=int(d["tweet_id"]), author_id=event.actor, text=d["text"],
                   reply_to=int(d["reply_to"]) if "reply_to" in d else None,
                   quote_of=int(d["quote_of"]) if "quote_of" in d else None,
                   created_at=event.occurred_at, media=tuple(d.get("media", ())))
