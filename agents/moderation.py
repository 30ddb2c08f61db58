"""moderation agent: ingest.tweets -> one verdict per tweet -> Cassandra and the verdicts topic;
delivered tweets, deletions and verdict changes -> tweets.moderated, which fan-out and
notifications read (DESIGN.md decision 11: a tweet is delivered only after its verdict).

Per batch, in partition order (ingest.tweets is keyed by author, so an author's tweets and the
overrides of their verdicts arrive in order on one partition):

1. tweet.created: scored in one text-model call (pipeline/moderation.py), judged against its
   author's history; the tweet is stored with its action, then the verdict, the author's history
   row and (hide) the review queue. Forwarded only when delivered (allow, label).
2. verdict.overridden: a moderator's action replaces the verdict (written at the override's time,
   so a replayed model verdict never wins); the author's strikes follow it. A tweet becoming
   deliverable is forwarded as a tweet.created, one stopping being deliverable as the
   tweet.moderated event; between allow and label only the stored tweet changes.
3. tweet.deleted: forwarded (fan-out deletes it and takes back what it counted for).

Author histories live in memory for the authors of this worker's partitions and are reloaded from
Cassandra (moderation_by_author) on a miss; a rebalance forgets them all, since another worker may
have judged those authors' tweets meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import faust

from agents.batch_stats import stage, timed
from agents.delivery import Appends, plan_appends, write_appends
from agents.runtime import Positions, Rejections, Runtime, run_batches, side_by_side
from pipeline import forwarding
from pipeline.events import Event
from pipeline.model import Tweet
from pipeline.moderation import Action, AuthorHistories, AuthorHistory, Moderator, Post, TextModel
from pipeline.topology import TopicSpec
from pipeline.verdicts import VerdictRecord, created_event, history_from_rows

log = logging.getLogger("starling.moderation")

VERDICTS = "verdicts"
FORWARD = "tweets.moderated"


class Histories:
    """The author histories of one worker: an LRU in front of Cassandra (bounded by entries,
    pipeline.moderation.AuthorHistories), forgotten on rebalance."""

    def __init__(self, max_entries: int, history_max: int) -> None:
        self.history_max = history_max
        self.epoch = 0
        self._kept = AuthorHistories(max_entries)

    def forget(self) -> None:
        self._kept.clear()
        self.epoch += 1  # a batch in flight during a rebalance keeps its results to itself

    async def load(self, rt: Runtime, authors: set[int]) -> dict[int, AuthorHistory]:
        cass, _ = await rt.stores()
        out = {a: self._kept.get(a) for a in authors if a in self._kept}
        missing = sorted(authors - out.keys())
        # Posts and strikes each keep history_max; twice that many rows covers both in practice.
        if missing:
            rows = await cass.moderation_history_rows(missing, 2 * self.history_max)
            out.update({a: history_from_rows(rows[a], self.history_max) for a in missing})
        return out

    async def prefetch(self, rt: Runtime, authors: set[int]) -> None:
        """Load the histories a batch will need into memory ahead of it (while its references
        are checked): kept only if no rebalance came in between, as keep() does."""
        epoch = self.epoch
        missing = {a for a in authors if a not in self._kept}
        if missing:
            self.keep(await self.load(rt, missing), epoch)

    def keep(self, histories: dict[int, AuthorHistory], epoch: int) -> None:
        if epoch != self.epoch:
            return
        for author, history in histories.items():
            self._kept.put(author, history)


def register(app: faust.App, rt: Runtime, topic: faust.TopicT, spec: TopicSpec) -> None:
    config = rt.topology.tunables.moderation
    histories = Histories(config.history_entries, config.history_max)
    forward_partitions = rt.topology.topics[FORWARD].partitions
    judge: dict[str, Moderator] = {}

    @app.on_partitions_revoked.connect
    async def on_revoked(_sender: Any, *_args: Any, **_kwargs: Any) -> None:
        histories.forget()

    def authors_of(events: Sequence[Event]) -> set[int]:
        return ({e.actor for e in events if e.type == "tweet.created"}
                | {e.id_field("author_id") for e in events if e.type == "verdict.overridden"})

    async def prefetch(events: Sequence[Event]) -> None:
        await histories.prefetch(rt, authors_of(events))

    async def handle(events: Sequence[Event], _positions: Positions) -> Rejections:
        cass, _ = await rt.stores()
        moderator = judge["moderator"]
        epoch = histories.epoch
        created = [e for e in events if e.type == "tweet.created"]
        overrides = [e for e in events if e.type == "verdict.overridden"]
        with stage("load"):
            history, registered = await asyncio.gather(histories.load(rt, authors_of(events)),
                                                       rt.registered_at({e.actor for e in created}))
            created_ids = {e.id_field("tweet_id") for e in created}
            known = await cass.tweet_refs({e.id_field("tweet_id") for e in overrides} - created_ids)
        with stage("score"):
            scores = iter(moderator.model.score_batch([e.data["text"] for e in created]) if created else [])

        tweets: dict[int, Tweet] = {}
        judged: list[tuple[Tweet, VerdictRecord, str]] = []
        overridden: list[VerdictRecord] = []
        published: list[Event] = []  # to the verdicts topic
        forwarded: list[Event] = []  # to tweets.moderated, in partition order (packed per partition)
        for e in events:
            if e.type == "tweet.created":
                tweet = Tweet.from_event(e)
                post = Post(tweet.tweet_id, tweet.author_id, tweet.text, tweet.created_at,
                            registered.get(tweet.author_id))
                verdict, history[tweet.author_id] = moderator.assess(post, next(scores), history[tweet.author_id])
                record = VerdictRecord.of_model(verdict, tweet.created_at)
                tweets[tweet.tweet_id] = replace(tweet, moderation=verdict.action.code)
                judged.append((tweets[tweet.tweet_id], record, _fingerprint(history[tweet.author_id], tweet.tweet_id)))
                published.append(record.event(e.event_id))
                if record.delivered:
                    forwarded.append(e)
            elif e.type == "verdict.overridden":
                tweet_id = e.id_field("tweet_id")
                stored = tweets.get(tweet_id) or known.get(tweet_id)
                if stored is None:  # the reference check saw it; a row lost since is not ours to invent
                    log.warning("override of tweet %d: tweet not found, ignored", tweet_id)
                    continue
                previous = Action.parse(stored.moderation)
                record = VerdictRecord.of_override(e, previous, stored.created_at)
                tweets[tweet_id] = replace(stored, moderation=record.action.code)
                author = record.author_id
                history[author] = history[author].overridden(tweet_id, stored.created_at, record.action, config)
                overridden.append(record)
                published.append(record.event(e.event_id))
                if record.delivered and not previous.delivered:
                    # Delivered from now on: at the override's time, so that counts take it back in.
                    forwarded.append(created_event(replace(stored, created_at=record.decided_at), e.event_id))
                elif previous.delivered and not record.delivered:
                    forwarded.append(published[-1])
            else:
                forwarded.append(e)  # tweet.deleted

        pushes = forwarding.to_push(forwarded, {t.tweet_id for t, r, _fp in judged if r.delivered})
        records = forwarding.pack(forwarded, forward_partitions, pushed={tweet for _author, tweet in pushes})

        async def save() -> None:
            with stage("save"):
                await cass.save_judged(judged)
                for record in overridden:  # in order: two overrides of one tweet in a batch end as the last says
                    await cass.save_override(record)
                await rt.hot.put_tweets(tweets[r.tweet_id] for r in overridden)

        planned: list[Appends | None] = []

        async def plan() -> None:
            with stage("push.plan"):
                planned.append(await plan_appends(rt, pushes))

        # Truth first (the tweets with their actions and verdicts), then the caches and topics; the
        # push's reads (the authors' counts, their follower lists, who read lately) write nothing, so
        # they go beside the save. Alternating 20 s spells of one 240 s run at 500 and at 450 tweets/s
        # (docs/ARCHITECTURE.md): batch p99 811 and 388 ms against 879 and 431 with the reads after
        # the save, p50 within the spread; the machine's CPU, not the round trips, bounds the rest.
        await side_by_side(save(), plan())
        # The tweets just judged deliverable go into home timelines from here, beside the records
        # for the other agents: the fanout agent would push them a Kafka hop later (its consumer's
        # wait, its own batch: p50 ~130-220 ms at 300 tweets/s, docs/ARCHITECTURE.md), and does
        # the rest of their work (counts, hashtags, notifications). Both are idempotent: a failure
        # runs the batch again.
        await side_by_side(timed("push", write_appends(rt, planned[0])),
                           timed("emit", rt.emit_all((published, VERDICTS), (records, FORWARD))))
        histories.keep(history, epoch)
        return []

    @app.agent(topic, name="moderation")
    async def moderation_agent(stream: faust.StreamT) -> None:
        if "moderator" not in judge:
            # `starling worker` loaded the model before joining its group (preload); anything
            # else that builds the app reads it here, off the event loop (heartbeats keep going).
            model = _preloaded if _preloaded is not None else await asyncio.to_thread(TextModel.packaged)
            judge["moderator"] = Moderator(config, model)
        # An author's history (Cassandra, when not in memory) is read while the batch's references
        # are checked, not after.
        await run_batches(rt, stream, spec, handle, "moderation", prefetch=prefetch)


_preloaded: TextModel | None = None


def preload() -> TextModel:
    """Read the text model (~2 s, ~130 MB) before the worker joins its consumer group. Loaded in
    the agent instead, the group is stable (what `stack up` waits for) while the first batch still
    waits for the model: the first tweets after a start took seconds to be judged."""
    global _preloaded
    if _preloaded is None:
        _preloaded = TextModel.packaged()
    return _preloaded


def _fingerprint(history: AuthorHistory, tweet_id: int) -> str:
    for posted_id, _at, fp in reversed(history.posts):
        if posted_id == tweet_id:
            return fp
    return ""
