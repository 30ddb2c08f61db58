"""The Cassandra side of Starling: tweets, users and the social graph, written idempotently."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cassandra.cluster import Cluster, Session
from cassandra.query import UNSET_VALUE

from adapters import cql
import orjson

from pipeline.counts import KINDS, Counts, FactState
from pipeline.graph import FollowerCount
from pipeline.model import Tweet, User
from pipeline.moderation import Action, full_scores, stored_scores
from pipeline.notifications import Notification
from pipeline.references import TweetState
from pipeline.verdicts import MODEL, VerdictRecord
from pipeline.visibility import Viewer
from pipeline.settings import Settings


def write_ts_us(occurred_at_ms: int) -> int:
    """Cassandra write timestamp from the event's time: replays rewrite identical cells."""
    return occurred_at_ms * 1000


def _set(value: Any) -> Any:
    """A value for a column of a new row's INSERT: None and empty collections are left unset.
    Cassandra stores an INSERT's null as a tombstone cell (and an empty non-frozen collection as a
    collection tombstone): on the model's first verdict, three of them a row, and four null
    references of a plain tweet, which every flush and compaction then carries. Only for
    columns nothing else wrote earlier (a new tweet's, its first verdict's): an unset value
    clears nothing."""
    return UNSET_VALUE if value is None or (type(value) in (list, dict) and not value) else value


def _tweet_row(t: Tweet, moderation: str | None, ts: int) -> tuple[Any, ...]:
    """insert_tweet's values for a new tweet with its action."""
    return (t.tweet_id, t.author_id, t.text, _set(t.reply_to), _set(t.quote_of), _set(t.retweet_of),
            _dt(t.created_at), orjson.dumps(t.media).decode() if t.media else UNSET_VALUE, _set(moderation), ts)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def _ms(dt: datetime | None) -> int:
    if dt is None:
        return 0
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


@dataclass
class CassandraStore:
    cluster: Cluster
    session: Session
    _stmts: dict[str, Any]
    # Partitions on the same replicas per write request where a batch writes many
    # (cql.execute_grouped; bench/cassandra_writes.py compares).
    partitions_per_request: int = cql.PARTITIONS_PER_REQUEST

    @classmethod
    async def open(cls, settings: Settings) -> CassandraStore:
        cluster, session = await cql.connect(settings, settings.keyspace)
        stmts = {name: await cql.prepare(session, text) for name, text in _STATEMENTS.items()}
        # A lightweight transaction must not be retried blindly by the driver (JAVA-819).
        stmts["claim_handle"] = await cql.prepare(
            session, "INSERT INTO users_by_handle (handle_folded, user_id) VALUES (?, ?) IF NOT EXISTS",
            idempotent=False)
        return cls(cluster, session, stmts)

    async def close(self) -> None:
        await asyncio.to_thread(self.cluster.shutdown)

    # -- users -------------------------------------------------------------------------------
    async def claim_handle(self, handle: str, user_id: int) -> int:
        """Reserve a handle (case-insensitively) for `user_id`; returns the id that owns it.

        A lightweight transaction, because two registrations for one handle arrive on different
        partitions. Re-claiming one's own handle (a replay) returns one's own id.
        """
        rows = await cql.execute(self.session, self._stmts["claim_handle"], (handle.casefold(), user_id))
        row = rows[0]
        return user_id if row["[applied]"] else int(row["user_id"])

    async def save_users(self, users: Iterable[tuple[User, int]]) -> None:
        rows = [(u.user_id, u.handle, u.display_name, u.bio, u.protected, u.region, _dt(u.created_at), ts)
                for u, ts in users]
        await cql.execute_many(self.session, self._stmts["insert_user"], rows)

    async def update_users(self, updates: Iterable[tuple[int, dict[str, Any], int]]) -> None:
        """(user id, changed profile fields, write timestamp): each field is its own cell (LWW)."""
        for user_id, fields, ts in updates:
            for name, value in fields.items():
                await cql.execute(self.session, self._stmts[f"update_user_{name}"], (ts, value, user_id))

    async def existing_users(self, user_ids: Iterable[int]) -> set[int]:
        ids = list(set(user_ids))
        if not ids:
            return set()
        rows = await cql.execute(self.session, self._stmts["existing_users"], (ids,))
        return {r["user_id"] for r in rows}

    async def get_users(self, user_ids: Iterable[int]) -> dict[int, User]:
        ids = list(set(user_ids))
        if not ids:
            return {}
        rows = await cql.execute(self.session, self._stmts["get_users"], (ids,))
        return {r["user_id"]: _user(r) for r in rows}

    async def user_id_for_handle(self, handle: str) -> int | None:
        rows = await cql.execute(self.session, self._stmts["get_handle"], (handle.casefold(),))
        return rows[0]["user_id"] if rows else None

    # -- tweets ------------------------------------------------------------------------------
    async def save_tweets(self, tweets: Iterable[Tweet]) -> None:
        """Tweets whose verdict is already set (retweets, which are not judged): the tweet row,
        its author index and reply index, batched by partition and replicas as save_judged is."""
        s = self._stmts
        items: list[tuple[Any, Any, Sequence[Any]]] = []
        for t in tweets:
            ts = write_ts_us(t.created_at)
            items += [
                (("tweet", t.tweet_id), s["insert_tweet"], _tweet_row(t, t.moderation, ts)),
                (("author", t.author_id), s["insert_by_author"], (t.author_id, t.tweet_id, ts)),
            ]
            if t.reply_to is not None:
                items.append((("replies", t.reply_to), s["insert_reply"], (t.reply_to, t.tweet_id, ts)))
        await cql.execute_grouped(self.session, items, partitions_per_request=self.partitions_per_request)

    async def delete_tweets(self, deletions: Iterable[tuple[int, int, int]]) -> None:
        """(tweet id, author id, event ms): keep the row as a tombstone with the text cleared."""
        rows = list(deletions)
        await cql.execute_many(self.session, self._stmts["mark_deleted"], [
            (write_ts_us(ms), tweet_id) for tweet_id, _author, ms in rows])
        await cql.execute_many(self.session, self._stmts["delete_by_author"], [
            (write_ts_us(ms), author, tweet_id) for tweet_id, author, ms in rows])

    async def tweet_states(self, tweet_ids: Iterable[int]) -> dict[int, TweetState]:
        ids = list(set(tweet_ids))
        if not ids:
            return {}
        rows = await cql.execute(self.session, self._stmts["tweet_states"], (ids,))
        return {r["tweet_id"]: TweetState(author_id=r["author_id"], deleted=bool(r["deleted"]))
                for r in rows if r["author_id"] is not None}

    async def get_tweets(self, tweet_ids: Iterable[int]) -> dict[int, Tweet]:
        """Live tweets by id; deleted ones are absent."""
        ids = list(set(tweet_ids))
        if not ids:
            return {}
        rows = await cql.execute(self.session, self._stmts["get_tweets"], (ids,))
        return {r["tweet_id"]: _tweet(r) for r in rows if not r["deleted"] and r["text"] is not None}

    async def recent_tweet_ids(self, author_id: int, limit: int, max_id: int | None = None) -> list[int]:
        if max_id is None:
            rows = await cql.execute(self.session, self._stmts["recent_by_author"], (author_id, limit))
        else:
            rows = await cql.execute(self.session, self._stmts["recent_by_author_before"], (author_id, max_id, limit))
        return [r["tweet_id"] for r in rows]

    # -- graph -------------------------------------------------------------------------------
    async def apply_follows(self, edges: Iterable[tuple[int, int, bool, int]]) -> None:
        """(follower, followee, following?, event ms): follow upserts, unfollow deletes, by event time."""
        await self.apply_edges("follow", edges)

    async def apply_edges(self, kind: str, edges: Iterable[tuple[int, int, bool, int]],
                          tables: Collection[str] | None = None) -> None:
        """(source, target, present?, event ms) for kind follow|block|mute, both directions at once
        (or only `tables`: a bulk load orders its rows for one table at a time, so that each
        partition's rows go in few batches).

        follow: followers_by_user + following_by_user; block: blocks_by_user + blocked_by_user;
        mute: mutes_by_user only (a mute is private to the muter).
        """
        directions = [d for d in _EDGE_TABLES[kind] if tables is None or d[0] in tables]
        inserts: dict[str, list[tuple[Any, ...]]] = {}
        deletes: dict[str, list[tuple[Any, ...]]] = {}
        for source, target, present, ms in edges:
            ts = write_ts_us(ms)
            for table, key, _other in directions:
                k, o = (source, target) if key == "source" else (target, source)
                if present:
                    inserts.setdefault(table, []).append((k, o, _dt(ms), ts))
                else:
                    deletes.setdefault(table, []).append((ts, k, o))
        # Every row carries its event's timestamp, so the tables (and an edge's insert and delete)
        # may be written in any order: all at once.
        await asyncio.gather(
            *(cql.execute_by_partition(self.session, self._stmts[f"insert_{t}"], rows,
                                       partitions_per_request=self.partitions_per_request)
              for t, rows in inserts.items()),
            *(cql.execute_many(self.session, self._stmts[f"delete_{t}"], rows) for t, rows in deletes.items()))

    # -- engagements -------------------------------------------------------------------------
    async def apply_likes(self, likes: Iterable[tuple[int, int, bool, int]]) -> None:
        """(tweet, user, liked?, event ms): one fact per (tweet, user), last event time wins."""
        ins, dels = [], []
        for tweet, user, liked, ms in likes:
            ts = write_ts_us(ms)
            if liked:
                ins.append((tweet, user, _dt(ms), ts))
            else:
                dels.append((ts, tweet, user))
        # Independent tables, written concurrently; a tweet's likes go in single-partition batches
        # (a storm on one tweet is a few batches per event batch, not one request per like).
        await asyncio.gather(
            cql.execute_by_partition(self.session, self._stmts["insert_like"], ins,
                                     partitions_per_request=self.partitions_per_request),
            cql.execute_many(self.session, self._stmts["insert_like_by_user"], [(u, t, at, ts) for t, u, at, ts in ins]),
            cql.execute_by_partition(self.session, self._stmts["delete_like"], dels, key_index=1,
                                     partitions_per_request=self.partitions_per_request),
            cql.execute_many(self.session, self._stmts["delete_like_by_user"], [(ts, u, t) for ts, t, u in dels]))

    async def apply_retweets(self, retweets: Iterable[tuple[int, int, int | None, int]]) -> None:
        """(tweet, user, retweet id or None for undo, event ms)."""
        ins, dels = [], []
        for tweet, user, retweet_id, ms in retweets:
            ts = write_ts_us(ms)
            if retweet_id is not None:
                ins.append((tweet, user, retweet_id, _dt(ms), ts))
            else:
                dels.append((ts, tweet, user))
        await asyncio.gather(
            cql.execute_by_partition(self.session, self._stmts["insert_retweet"], ins,
                                     partitions_per_request=self.partitions_per_request),
            cql.execute_by_partition(self.session, self._stmts["delete_retweet"], dels, key_index=1,
                                     partitions_per_request=self.partitions_per_request))

    # -- counts and celebrities --------------------------------------------------------------
    async def follower_counts(self, user_ids: Iterable[int]) -> dict[int, FollowerCount]:
        ids = list(set(user_ids))
        if not ids:
            return {}
        rows = await cql.execute(self.session, self._stmts["get_follower_counts"], (ids,))
        return {r["user_id"]: FollowerCount(r["followers"] or 0, r["src_partition"], r["src_offset"]) for r in rows}

    async def save_follower_counts(self, counts: dict[int, FollowerCount]) -> None:
        await cql.execute_many(self.session, self._stmts["put_follower_count"], [
            (c.followers, c.partition, c.offset, uid) for uid, c in counts.items()])

    async def follow_edges_among(self, pairs: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
        """Which of these (follower, followee) edges exist now."""
        by_followee: dict[int, list[int]] = {}
        for follower, followee in set(pairs):
            by_followee.setdefault(followee, []).append(follower)
        found: set[tuple[int, int]] = set()
        for followee, followers in by_followee.items():
            rows = await cql.execute(self.session, self._stmts["edges_among"], (followee, followers))
            found.update((r["follower_id"], followee) for r in rows)
        return found

    async def set_celebrities(self, flags: dict[int, bool]) -> None:
        await cql.execute_many(self.session, self._stmts["add_celebrity"], [(u,) for u, f in flags.items() if f])
        await cql.execute_many(self.session, self._stmts["remove_celebrity"], [(u,) for u, f in flags.items() if not f])

    async def celebrities(self) -> set[int]:
        rows = await cql.execute(self.session, self._stmts["celebrities"], ())
        return {r["user_id"] for r in rows}

    async def viewer(self, reader: int) -> Viewer:
        """Everything the visibility rule needs about a reader: four partition reads, concurrently."""
        blocks, blocked_by, mutes, following = await asyncio.gather(
            cql.execute(self.session, self._stmts["blocks_of"], (reader,)),
            cql.execute(self.session, self._stmts["blocked_by_of"], (reader,)),
            cql.execute(self.session, self._stmts["mutes_of"], (reader,)),
            self.following(reader))
        blocked = {r["target_id"] for r in blocks} | {r["source_id"] for r in blocked_by}
        return Viewer(user_id=reader, following=frozenset(following),
                      hidden=frozenset(blocked | {r["target_id"] for r in mutes}),
                      blocked_either_way=frozenset(blocked))

    async def relationship(self, viewer: int, other: int) -> dict[str, bool]:
        async def exists(stmt: str, a: int, b: int) -> bool:
            return bool(await cql.execute(self.session, self._stmts[stmt], (a, b)))

        return {"following": await exists("is_following", viewer, other),
                "followed_by": await exists("is_following", other, viewer),
                "blocking": await exists("is_blocking", viewer, other),
                "blocked_by": await exists("is_blocking", other, viewer),
                "muting": await exists("is_muting", viewer, other)}

    async def following_count(self, user_id: int) -> int:
        rows = await cql.execute(self.session, self._stmts["count_following"], (user_id,))
        return int(rows[0]["n"])

    async def edge_page(self, table: str, user_id: int, after: int | None, limit: int) -> list[int]:
        """Followers or followees of user_id in id order, after a cursor."""
        stmt = self._stmts[f"{table}_page_after" if after is not None else f"{table}_page"]
        rows = await cql.execute(self.session, stmt, (user_id, after, limit) if after is not None else (user_id, limit))
        return [r["other"] for r in rows]

    async def replies(self, tweet_id: int, after: int | None, limit: int) -> list[int]:
        if after is None:
            rows = await cql.execute(self.session, self._stmts["replies"], (tweet_id, limit))
        else:
            rows = await cql.execute(self.session, self._stmts["replies_after"], (tweet_id, after, limit))
        return [r["reply_id"] for r in rows]

    async def retweet_ids(self, pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], int]:
        """The retweet entry id of each (tweet, user) that has one."""
        out = {}
        for tweet, user in pairs:
            rows = await cql.execute(self.session, self._stmts["retweet_id"], (tweet, user))
            if rows:
                out[(tweet, user)] = rows[0]["retweet_id"]
        return out

    async def liked_by(self, tweet_id: int) -> set[int]:
        rows = await cql.execute(self.session, self._stmts["likes_of"], (tweet_id,))
        return {r["user_id"] for r in rows}

    async def follower_pages(self, user_id: int, page_size: int) -> AsyncIterator[list[int]]:
        async for page in cql.pages(self.session, self._stmts["followers"], (user_id,), page_size):
            yield [r["follower_id"] for r in page]

    async def followers_of(self, user_ids: Sequence[int], page_size: int) -> dict[int, list[int]]:
        """The followers of several accounts in one query, paged (IN over their partitions): for
        short lists one request instead of one per account, and the request, not the rows, is
        most of the driver's cost for a short list (bench/fanout.py at 100,000 users). A long
        list is read alone, the same way."""
        out: dict[int, list[int]] = {u: [] for u in user_ids}
        if out:
            async for page in cql.pages(self.session, self._stmts["followers_of"], (list(out),), page_size,
                                        profile=cql.TUPLES):
                for user, follower in page:
                    out[user].append(follower)
        return out

    async def following(self, user_id: int, limit: int = 5000) -> list[int]:
        rows = await cql.execute(self.session, self._stmts["following"], (user_id, limit))
        return [r["followee_id"] for r in rows]

    # -- engagement counts (pipeline/counts.py) ----------------------------------------------
    async def fact_states(self, keys: Iterable[tuple[int, str, int]]) -> dict[tuple[int, str, int], FactState]:
        """The stored state (and write time) of engagement fact cells; cells never written are absent."""
        groups: dict[tuple[int, str], list[int]] = {}
        for tweet, kind, member in set(keys):
            groups.setdefault((tweet, kind), []).append(member)
        results = await asyncio.gather(*(
            cql.execute(self.session, self._stmts["fact_states"], (tweet, kind, members))
            for (tweet, kind), members in groups.items()))
        out: dict[tuple[int, str, int], FactState] = {}
        for (tweet, kind), rows in zip(groups, results):
            for r in rows:
                out[(tweet, kind, r["member"])] = FactState(bool(r["present"]), int(r["ts"]))
        return out

    async def write_facts(self, facts: Mapping[tuple[int, str, int], FactState]) -> None:
        rows = [(tweet, kind, member, s.present, s.ts_us) for (tweet, kind, member), s in facts.items()]
        await cql.execute_by_partition(self.session, self._stmts["insert_fact"], rows,
                                       partitions_per_request=self.partitions_per_request)

    async def engagement_counts(self, tweet_ids: Iterable[int]) -> dict[int, Counts]:
        ids = list(set(tweet_ids))
        if not ids:
            return {}
        rows = await cql.execute(self.session, self._stmts["get_counts"], (ids,))
        return {r["tweet_id"]: Counts(values={k: int(r[k] or 0) for k in KINDS},
                                      partition=r["src_partition"], offset=r["src_offset"]) for r in rows}

    async def save_engagement_counts(self, counts: Mapping[int, Counts]) -> None:
        rows = [(t, *(c.get(k) for k in KINDS), c.partition, c.offset, c.offset + 1) for t, c in counts.items()]
        await cql.execute_many(self.session, self._stmts["put_counts"], rows)

    async def tweet_refs(self, tweet_ids: Iterable[int]) -> dict[int, Tweet]:
        """Tweets by id, deleted ones included (read before a delete: its text, reply_to and
        quote_of say what it counted for)."""
        ids = list(set(tweet_ids))
        if not ids:
            return {}
        rows = await cql.execute(self.session, self._stmts["tweet_refs"], (ids,))
        return {r["tweet_id"]: Tweet(tweet_id=r["tweet_id"], author_id=r["author_id"], text=r["text"] or "",
                                     reply_to=r["reply_to"], quote_of=r["quote_of"], created_at=_ms(r["created_at"]),
                                     media=tuple(orjson.loads(r["media"])) if r["media"] else (),
                                     retweet_of=r.get("retweet_of"), moderation=r["moderation"] or "allow")
                for r in rows if r["author_id"] is not None}

    async def engaged_users(self, table: str, tweet_id: int, after: int | None, limit: int) -> list[int]:
        """Who liked (likes_by_tweet) or retweeted (retweets_by_tweet) a tweet, by user id, after a cursor."""
        if after is None:
            rows = await cql.execute(self.session, self._stmts[f"{table}_page"], (tweet_id, limit))
        else:
            rows = await cql.execute(self.session, self._stmts[f"{table}_page_after"], (tweet_id, after, limit))
        return [r["user_id"] for r in rows]

    async def liked_tweets(self, user_id: int, max_id: int | None, limit: int) -> list[int]:
        """A user's liked tweets, newest tweet first, at or below max_id."""
        if max_id is None:
            rows = await cql.execute(self.session, self._stmts["likes_of_user"], (user_id, limit))
        else:
            rows = await cql.execute(self.session, self._stmts["likes_of_user_before"], (user_id, max_id, limit))
        return [r["tweet_id"] for r in rows]

    # -- trends ----------------------------------------------------------------------------------
    async def save_trend_history(self, at_ms: int, by_region: Mapping[str, Mapping[str, list[dict[str, Any]]]]) -> None:
        """Append one ranked snapshot per region and window (partition: region, window, day)."""
        day = _dt(at_ms).date()
        rows = [(region, window, day, _dt(at_ms), rank, t["tag"], float(t["score"]), int(t["count"]), int(t["authors"]))
                for region, windows in by_region.items() for window, trends in windows.items()
                for rank, t in enumerate(trends, 1)]
        await cql.execute_many(self.session, self._stmts["insert_trend"], rows)

    async def trend_history(self, region: str, window: str, day_ms: int, limit: int) -> list[dict[str, Any]]:
        return await cql.execute(self.session, self._stmts["trend_history"], (region, window, _dt(day_ms).date(), limit))

    # -- moderation ----------------------------------------------------------------------------
    async def save_judged(self, judged: Iterable[tuple[Tweet, VerdictRecord, str]]) -> None:
        """New tweets with the model's verdicts (tweet, verdict, fingerprint): the tweet row with its
        action and its author index and reply index, the verdict row, the author's history row,
        and the review queue for hide. Written at the tweet's time, so a later override (written
        at its own time) stays in force when these are replayed. A tweet's row and its verdict
        travel in one batch, and so do an author's index and history rows."""
        items: list[tuple[Any, Any, Sequence[Any]]] = []
        s = self._stmts
        for t, v, fp in judged:
            ts = write_ts_us(t.created_at)
            items += [
                (("tweet", t.tweet_id), s["insert_tweet"], _tweet_row(t, v.action.code, ts)),
                (("tweet", t.tweet_id), s["insert_verdict"],
                 (v.tweet_id, v.author_id, v.action.code, v.source, _set(list(v.reasons)),
                  _set(stored_scores(v.scores)), _set(list(v.evidence)), _dt(v.decided_at),
                  v.action.code, write_ts_us(v.decided_at))),
                (("author", t.author_id), s["insert_by_author"], (t.author_id, t.tweet_id, ts)),
                (("author", t.author_id), s["insert_moderation_by_author"],
                 (v.author_id, v.tweet_id, _dt(v.decided_at), fp or UNSET_VALUE, v.action.code,
                  write_ts_us(v.decided_at))),
            ]
            if t.reply_to is not None:
                items.append((("replies", t.reply_to), s["insert_reply"], (t.reply_to, t.tweet_id, ts)))
            if v.action is Action.HIDE:
                items.append((("review", t.tweet_id), s["enqueue_review"],
                              (REVIEW_QUEUE, v.tweet_id, v.author_id, list(v.reasons), write_ts_us(v.decided_at))))
        await cql.execute_grouped(self.session, items, partitions_per_request=self.partitions_per_request)

    async def save_override(self, v: VerdictRecord) -> None:
        """A moderator's verdict: the verdict row (the model's first verdict stays in model_action),
        the tweet's moderation column, the author's history row, and out of the review queue."""
        ts = write_ts_us(v.decided_at)
        await asyncio.gather(
            cql.execute(self.session, self._stmts["override_verdict"],
                        (ts, v.action.code, v.source, list(v.reasons), {}, [], _dt(v.decided_at), v.moderator_id,
                         v.note, v.author_id, v.tweet_id)),
            cql.execute(self.session, self._stmts["set_moderation"], (ts, v.action.code, v.tweet_id)),
            cql.execute(self.session, self._stmts["override_by_author"], (ts, v.action.code, v.author_id, v.tweet_id)),
            cql.execute(self.session, self._stmts["dequeue_review"], (ts, REVIEW_QUEUE, v.tweet_id)),
        )

    async def verdicts(self, tweet_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        ids = list(set(tweet_ids))
        if not ids:
            return {}
        rows = await cql.execute(self.session, self._stmts["get_verdicts"], (ids,))
        # A model verdict's row keeps its non-zero scores (stored_scores); a moderator's has none.
        return {r["tweet_id"]: {**r, "decided_at": _ms(r["decided_at"]),
                                "scores": (full_scores if r["source"] == MODEL else dict)(r["scores"] or {})}
                for r in rows if r["action"] is not None}

    async def moderation_history_rows(self, author_ids: Sequence[int], limit: int) -> dict[int, list[dict[str, Any]]]:
        """Each author's newest moderation_by_author rows (up to `limit`, newest first), with `at`
        in epoch ms. Up to HISTORY_GROUP authors a query (IN over their partitions, PER PARTITION
        LIMIT), paged: a moderation batch's authors missing from the worker's memory cost a request
        or two, not one each (20-60 ms of a 40-130 ms batch at 150 tweets/s, bench/fanout.py)."""
        out: dict[int, list[dict[str, Any]]] = {a: [] for a in author_ids}
        ids = list(out)

        async def group(members: list[int]) -> None:
            async for page in cql.pages(self.session, self._stmts["moderation_by_authors"], (members, limit),
                                        HISTORY_PAGE_ROWS):
                for r in page:
                    out[r["author_id"]].append({"tweet_id": r["tweet_id"], "fingerprint": r["fingerprint"],
                                                "action": r["action"],
                                                "at": _ms(r["at"]) if r["at"] is not None else None})

        await asyncio.gather(*(group(ids[i:i + HISTORY_GROUP]) for i in range(0, len(ids), HISTORY_GROUP)))
        return out

    async def review_queue(self, max_id: int | None, limit: int) -> list[dict[str, Any]]:
        if max_id is None:
            return await cql.execute(self.session, self._stmts["review_queue"], (REVIEW_QUEUE, limit))
        return await cql.execute(self.session, self._stmts["review_queue_before"], (REVIEW_QUEUE, max_id, limit))

    # -- notifications -------------------------------------------------------------------------
    async def save_notifications(self, rows: Iterable[Notification]) -> None:
        await cql.execute_by_partition(self.session, self._stmts["insert_notification"], [
            (n.user_id, n.notification_id, n.kind, n.actor_id, n.tweet_id, n.group_key) for n in rows],
            partitions_per_request=self.partitions_per_request)

    async def notifications(self, user_id: int, max_id: int | None, limit: int) -> list[Notification]:
        if max_id is None:
            rows = await cql.execute(self.session, self._stmts["notifications"], (user_id, limit))
        else:
            rows = await cql.execute(self.session, self._stmts["notifications_before"], (user_id, max_id, limit))
        return [Notification(user_id, r["notification_id"], r["kind"], r["actor_id"], r["tweet_id"], r["group_key"])
                for r in rows]

    async def unread_notifications(self, user_id: int, read_up_to: int, cap: int) -> list[Notification]:
        rows = await cql.execute(self.session, self._stmts["notifications_after"], (user_id, read_up_to, cap))
        return [Notification(user_id, r["notification_id"], r["kind"], r["actor_id"], r["tweet_id"], r["group_key"])
                for r in rows]

    async def read_up_to(self, user_id: int) -> int:
        rows = await cql.execute(self.session, self._stmts["read_mark"], (user_id,))
        return int(rows[0]["read_up_to"]) if rows and rows[0]["read_up_to"] is not None else 0

    async def mark_read(self, user_id: int, up_to: int) -> None:
        """Monotonic: the mark is written with itself as the write time, so the largest one wins."""
        await cql.execute(self.session, self._stmts["put_read_mark"], (up_to, up_to, user_id))


def _user(r: dict[str, Any]) -> User:
    return User(user_id=r["user_id"], handle=r["handle"], display_name=r["display_name"],
                bio=r["bio"] or "", protected=bool(r["protected"]), region=r["region"],
                created_at=_ms(r["created_at"]))


def _tweet(r: dict[str, Any]) -> Tweet:
    return Tweet(tweet_id=r["tweet_id"], author_id=r["author_id"], text=r["text"],
                 reply_to=r["reply_to"], quote_of=r["quote_of"], created_at=_ms(r["created_at"]),
                 media=tuple(orjson.loads(r["media"])) if r.get("media") else (), retweet_of=r.get("retweet_of"),
                 moderation=r.get("moderation") or "allow")


# (table, which end is the partition key, the other end) per edge kind.
_EDGE_TABLES = {
    "follow": (("followers_by_user", "target", "source"), ("following_by_user", "source", "target")),
    "block": (("blocks_by_user", "source", "target"), ("blocked_by_user", "target", "source")),
    "mute": (("mutes_by_user", "source", "target"),),
}
_EDGE_COLUMNS = {
    "followers_by_user": ("user_id", "follower_id", "followed_at"),
    "following_by_user": ("user_id", "followee_id", "followed_at"),
    "blocks_by_user": ("user_id", "target_id", "created_at"),
    "blocked_by_user": ("user_id", "source_id", "created_at"),
    "mutes_by_user": ("user_id", "target_id", "created_at"),
}
_PROFILE_FIELDS = ("display_name", "bio", "protected", "region")
REVIEW_QUEUE = "hide"  # one queue: tweets held pending review
# Author histories read together: at most this many authors a query, this many rows a page.
HISTORY_GROUP = 100
HISTORY_PAGE_ROWS = 5000


_STATEMENTS = {
    "insert_user": "INSERT INTO users (user_id, handle, display_name, bio, protected, region, created_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
    "existing_users": "SELECT user_id FROM users WHERE user_id IN ?",
    "get_users": "SELECT * FROM users WHERE user_id IN ?",
    "get_handle": "SELECT user_id FROM users_by_handle WHERE handle_folded = ?",
    "insert_tweet": "INSERT INTO tweets (tweet_id, author_id, text, reply_to, quote_of, retweet_of, created_at, media, "
                    "moderation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
    "retweet_id": "SELECT retweet_id FROM retweets_by_tweet WHERE tweet_id = ? AND user_id = ?",
    "insert_by_author": "INSERT INTO tweets_by_author (author_id, tweet_id) VALUES (?, ?) USING TIMESTAMP ?",
    "mark_deleted": "UPDATE tweets USING TIMESTAMP ? SET deleted = true, text = null, media = null WHERE tweet_id = ?",
    "delete_by_author": "DELETE FROM tweets_by_author USING TIMESTAMP ? WHERE author_id = ? AND tweet_id = ?",
    "tweet_states": "SELECT tweet_id, author_id, deleted FROM tweets WHERE tweet_id IN ?",
    "get_tweets": "SELECT * FROM tweets WHERE tweet_id IN ?",
    "recent_by_author": "SELECT tweet_id FROM tweets_by_author WHERE author_id = ? LIMIT ?",
    "recent_by_author_before": "SELECT tweet_id FROM tweets_by_author WHERE author_id = ? AND tweet_id <= ? LIMIT ?",
    "get_follower_counts": "SELECT * FROM follower_counts WHERE user_id IN ?",
    "put_follower_count": "UPDATE follower_counts SET followers = ?, src_partition = ?, src_offset = ? WHERE user_id = ?",
    "edges_among": "SELECT follower_id FROM followers_by_user WHERE user_id = ? AND follower_id IN ?",
    "add_celebrity": "INSERT INTO celebrities (shard, user_id) VALUES (0, ?)",
    "remove_celebrity": "DELETE FROM celebrities WHERE shard = 0 AND user_id = ?",
    "celebrities": "SELECT user_id FROM celebrities WHERE shard = 0",
    "blocks_of": "SELECT target_id FROM blocks_by_user WHERE user_id = ?",
    "blocked_by_of": "SELECT source_id FROM blocked_by_user WHERE user_id = ?",
    "mutes_of": "SELECT target_id FROM mutes_by_user WHERE user_id = ?",
    "is_following": "SELECT followee_id FROM following_by_user WHERE user_id = ? AND followee_id = ?",
    "is_blocking": "SELECT target_id FROM blocks_by_user WHERE user_id = ? AND target_id = ?",
    "is_muting": "SELECT target_id FROM mutes_by_user WHERE user_id = ? AND target_id = ?",
    "count_following": "SELECT count(*) AS n FROM following_by_user WHERE user_id = ?",
    "followers_page": "SELECT follower_id AS other FROM followers_by_user WHERE user_id = ? LIMIT ?",
    "followers_page_after": "SELECT follower_id AS other FROM followers_by_user WHERE user_id = ? AND follower_id > ? LIMIT ?",
    "following_page": "SELECT followee_id AS other FROM following_by_user WHERE user_id = ? LIMIT ?",
    "following_page_after": "SELECT followee_id AS other FROM following_by_user WHERE user_id = ? AND followee_id > ? LIMIT ?",
    "insert_reply": "INSERT INTO replies_by_tweet (tweet_id, reply_id) VALUES (?, ?) USING TIMESTAMP ?",
    "replies": "SELECT reply_id FROM replies_by_tweet WHERE tweet_id = ? LIMIT ?",
    "replies_after": "SELECT reply_id FROM replies_by_tweet WHERE tweet_id = ? AND reply_id > ? LIMIT ?",
    "followers": "SELECT follower_id FROM followers_by_user WHERE user_id = ?",
    "followers_of": "SELECT user_id, follower_id FROM followers_by_user WHERE user_id IN ?",
    "following": "SELECT followee_id FROM following_by_user WHERE user_id = ? LIMIT ?",
    "insert_like": "INSERT INTO likes_by_tweet (tweet_id, user_id, liked_at) VALUES (?, ?, ?) USING TIMESTAMP ?",
    "insert_like_by_user": "INSERT INTO likes_by_user (user_id, tweet_id, liked_at) VALUES (?, ?, ?) "
                           "USING TIMESTAMP ?",
    "delete_like": "DELETE FROM likes_by_tweet USING TIMESTAMP ? WHERE tweet_id = ? AND user_id = ?",
    "delete_like_by_user": "DELETE FROM likes_by_user USING TIMESTAMP ? WHERE user_id = ? AND tweet_id = ?",
    "likes_of": "SELECT user_id FROM likes_by_tweet WHERE tweet_id = ?",
    "likes_by_tweet_page": "SELECT user_id FROM likes_by_tweet WHERE tweet_id = ? LIMIT ?",
    "likes_by_tweet_page_after": "SELECT user_id FROM likes_by_tweet WHERE tweet_id = ? AND user_id > ? LIMIT ?",
    "retweets_by_tweet_page": "SELECT user_id FROM retweets_by_tweet WHERE tweet_id = ? LIMIT ?",
    "retweets_by_tweet_page_after": "SELECT user_id FROM retweets_by_tweet WHERE tweet_id = ? AND user_id > ? LIMIT ?",
    "likes_of_user": "SELECT tweet_id FROM likes_by_user WHERE user_id = ? LIMIT ?",
    "likes_of_user_before": "SELECT tweet_id FROM likes_by_user WHERE user_id = ? AND tweet_id <= ? LIMIT ?",
    "fact_states": "SELECT member, present, WRITETIME(present) AS ts FROM engagement_facts "
                   "WHERE tweet_id = ? AND kind = ? AND member IN ?",
    "insert_fact": "INSERT INTO engagement_facts (tweet_id, kind, member, present) VALUES (?, ?, ?, ?) USING TIMESTAMP ?",
    "get_counts": "SELECT * FROM engagement_counts WHERE tweet_id IN ?",
    "put_counts": "INSERT INTO engagement_counts (tweet_id, likes, retweets, replies, quotes, src_partition, src_offset) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
    "tweet_refs": "SELECT tweet_id, author_id, text, reply_to, quote_of, retweet_of, created_at, media, moderation, "
                  "deleted FROM tweets "
                  "WHERE tweet_id IN ?",
    "insert_verdict": "INSERT INTO verdicts (tweet_id, author_id, action, source, reasons, scores, evidence, decided_at, "
                      "model_action) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
    "override_verdict": "UPDATE verdicts USING TIMESTAMP ? SET action = ?, source = ?, reasons = ?, scores = ?, "
                        "evidence = ?, decided_at = ?, moderator_id = ?, note = ?, author_id = ? WHERE tweet_id = ?",
    "get_verdicts": "SELECT * FROM verdicts WHERE tweet_id IN ?",
    "set_moderation": "UPDATE tweets USING TIMESTAMP ? SET moderation = ? WHERE tweet_id = ?",
    "insert_moderation_by_author": "INSERT INTO moderation_by_author (author_id, tweet_id, at, fingerprint, action) "
                                   "VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?",
    "override_by_author": "UPDATE moderation_by_author USING TIMESTAMP ? SET action = ? WHERE author_id = ? AND tweet_id = ?",
    "moderation_by_authors": "SELECT author_id, tweet_id, at, fingerprint, action FROM moderation_by_author "
                             "WHERE author_id IN ? PER PARTITION LIMIT ?",
    "enqueue_review": "INSERT INTO review_queue (queue, tweet_id, author_id, reasons) VALUES (?, ?, ?, ?) USING TIMESTAMP ?",
    "dequeue_review": "DELETE FROM review_queue USING TIMESTAMP ? WHERE queue = ? AND tweet_id = ?",
    "review_queue": "SELECT tweet_id, author_id, reasons FROM review_queue WHERE queue = ? LIMIT ?",
    "review_queue_before": "SELECT tweet_id, author_id, reasons FROM review_queue WHERE queue = ? AND tweet_id <= ? LIMIT ?",
    "insert_notification": "INSERT INTO notifications (user_id, notification_id, kind, actor_id, tweet_id, group_key) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
    "notifications": "SELECT * FROM notifications WHERE user_id = ? LIMIT ?",
    "notifications_before": "SELECT * FROM notifications WHERE user_id = ? AND notification_id <= ? LIMIT ?",
    "notifications_after": "SELECT * FROM notifications WHERE user_id = ? AND notification_id > ? LIMIT ?",
    "read_mark": "SELECT read_up_to FROM notification_reads WHERE user_id = ?",
    "insert_trend": "INSERT INTO trend_history (region, window_name, day, at, rank, tag, score, count, authors) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "trend_history": "SELECT at, rank, tag, score, count, authors FROM trend_history "
                     "WHERE region = ? AND window_name = ? AND day = ? LIMIT ?",
    "put_read_mark": "UPDATE notification_reads USING TIMESTAMP ? SET read_up_to = ? WHERE user_id = ?",
    "insert_retweet": "INSERT INTO retweets_by_tweet (tweet_id, user_id, retweet_id, retweeted_at) "
                      "VALUES (?, ?, ?, ?) USING TIMESTAMP ?",
    "delete_retweet": "DELETE FROM retweets_by_tweet USING TIMESTAMP ? WHERE tweet_id = ? AND user_id = ?",
    **{f"insert_{t}": f"INSERT INTO {t} ({k}, {o}, {at}) VALUES (?, ?, ?) USING TIMESTAMP ?"
       for t, (k, o, at) in _EDGE_COLUMNS.items()},
    **{f"delete_{t}": f"DELETE FROM {t} USING TIMESTAMP ? WHERE {k} = ? AND {o} = ?"
       for t, (k, o, _at) in _EDGE_COLUMNS.items()},
    **{f"update_user_{f}": f"UPDATE users USING TIMESTAMP ? SET {f} = ? WHERE user_id = ?" for f in _PROFILE_FIELDS},
}
