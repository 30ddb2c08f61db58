"""Verdicts as the pipeline stores and publishes them: one per tweet from the model, and one per
moderator override (docs/MODERATION.md, "In the pipeline"). Pure: the moderation agent does the I/O.

A model verdict is written at the tweet's time and an override at its own, later time (Cassandra
USING TIMESTAMP), so a replayed model verdict never undoes a moderator's decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.events import Event
from pipeline.model import Tweet
from pipeline.moderation import Action, AuthorHistory, Verdict

MODEL = "model"
MODERATOR = "moderator"
OVERRIDE_REASON = "moderator_override"


@dataclass(frozen=True, slots=True)
class VerdictRecord:
    tweet_id: int
    author_id: int
    action: Action
    source: str  # MODEL or MODERATOR
    decided_at: int  # epoch ms: the tweet's time for the model, the override's time for a moderator
    reasons: tuple[str, ...] = ()
    scores: Mapping[str, float] = field(default_factory=dict)
    evidence: tuple[str, ...] = ()
    moderator_id: int | None = None
    note: str | None = None
    previous: Action | None = None  # the action an override replaced

    @property
    def delivered(self) -> bool:
        return self.action.delivered

    @classmethod
    def of_model(cls, verdict: Verdict, tweet_at_ms: int) -> VerdictRecord:
        return cls(verdict.tweet_id, verdict.author_id, verdict.action, MODEL, tweet_at_ms, verdict.reasons,
                   dict(verdict.scores), verdict.evidence)

    @classmethod
    def of_override(cls, event: Event, previous: Action | None, tweet_at_ms: int) -> VerdictRecord:
        """A verdict.overridden event's record. Its time is kept after the tweet's, whatever the
        clocks say, so that it wins over the model's verdict in Cassandra."""
        d = event.data
        return cls(int(d["tweet_id"]), int(d["author_id"]), Action.parse(d["action"]), MODERATOR,
                   max(event.occurred_at, tweet_at_ms + 1), (OVERRIDE_REASON,), {}, (),
                   moderator_id=event.actor, note=d.get("note"), previous=previous)

    def event(self, event_id: int) -> Event:
        """The tweet.moderated event (topic verdicts; forwarded to tweets.moderated on withdrawal)."""
        data: dict[str, Any] = {
            "tweet_id": str(self.tweet_id), "author_id": str(self.author_id), "action": self.action.code,
            "delivered": self.delivered, "source": self.source, "reasons": list(self.reasons),
            "scores": {k: round(float(v), 6) for k, v in self.scores.items()}, "evidence": list(self.evidence),
        }
        if self.previous is not None:
            data["previous"] = self.previous.code
        if self.note:
            data["note"] = self.note
        actor = self.moderator_id if self.moderator_id is not None else self.author_id
        return Event(event_id=event_id, type="tweet.moderated", version=1, occurred_at=self.decided_at,
                     actor=actor, data=data)


def created_event(tweet: Tweet, event_id: int) -> Event:
    """A tweet.created event for a stored tweet: what the moderation agent forwards when a
    moderator restores a tweet the model held back (readers then treat it as newly delivered)."""
    data: dict[str, Any] = {"tweet_id": str(tweet.tweet_id), "text": tweet.text}
    if tweet.reply_to is not None:
        data["reply_to"] = str(tweet.reply_to)
    if tweet.quote_of is not None:
        data["quote_of"] = str(tweet.quote_of)
    if tweet.media:
        data["media"] = list(tweet.media)
    return Event(event_id=event_id, type="tweet.created", version=1, occurred_at=tweet.created_at,
                 actor=tweet.author_id, data=data)


def history_from_rows(rows: Iterable[Mapping[str, Any]], history_max: int) -> AuthorHistory:
    """An author's AuthorHistory from moderation_by_author rows (tweet_id, at ms, fingerprint,
    action), in any order: the newest `history_max` posts and strikes."""
    ordered = sorted((r for r in rows if r.get("at") is not None), key=lambda r: r["tweet_id"])
    posts = tuple((r["tweet_id"], r["at"], r.get("fingerprint") or "") for r in ordered)
    strikes = tuple((r["tweet_id"], r["at"], int(Action.parse(r["action"])))
                    for r in ordered if r.get("action") in ("hide", "block"))
    return AuthorHistory(posts[-history_max:], strikes[-history_max:])
