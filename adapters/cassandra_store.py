"""The Cassandra side of Starling: tweets, users and the social graph, written idempotently."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cassandra.cluster import Cluster, Session

from adapters import cql
from pipeline.model import Tweet, User
from pipeline.settings import Settings


def write_ts_us(occurred_at_ms: int) -> int:
    """Cassandra write timestamp from the event's time: replays rewrite identical cells."""
    return occurred_at_ms * 1000


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

    @classmethod
    async def open(cls, settings: Settings) -> CassandraStore:
        cluster, session = await cql.connect(settings, settings.keyspace)
        stmts = {name: await cql.prepare(session, text) for name, text in _STATEMENTS.items()}
        return cls(cluster, session, stmts)

    async def close(self) -> None:
        import asyncio

        await asyncio.to_thread(self.cluster.shutdown)

    # -- users -------------------------------------------------------------------------------
    async def save_users(self, users: Iterable[tuple[User, int]]) -> None:
        rows, handles = [], []
        for user, ts in users:
            rows.append((user.user_id, user.handle, user.display_name, user.bio, user.protected,
                         user.region, _dt(user.created_at), ts))
            handles.append((user.handle.casefold(), user.user_id, ts))
        await cql.execute_many(self.session, self._stmts["insert_user"], rows)
        await cql.execute_many(self.session, self._stmts["insert_handle"], handles)

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
        batch = list(tweets)
        await cql.execute_many(self.session, self._stmts["insert_tweet"], [
            (t.tweet_id, t.author_id, t.text, t.reply_to, t.quote_of, _dt(t.created_at),
             write_ts_us(t.created_at)) for t in batch])
        await cql.execute_many(self.session, self._stmts["insert_by_author"], [
            (t.author_id, t.tweet_id, write_ts_us(t.created_at)) for t in batch])

    async def get_tweets(self, tweet_ids: Iterable[int]) -> dict[int, Tweet]:
        ids = list(set(tweet_ids))
        if not ids:
            return {}
        rows = await cql.execute(self.session, self._stmts["get_tweets"], (ids,))
        return {r["tweet_id"]: _tweet(r) for r in rows}

    async def recent_tweet_ids(self, author_id: int, limit: int) -> list[int]:
        rows = await cql.execute(self.session, self._stmts["recent_by_author"], (author_id, limit))
        return [r["tweet_id"] for r in rows]

    # -- graph -------------------------------------------------------------------------------
    async def apply_follows(self, edges: Iterable[tuple[int, int, bool, int]]) -> None:
        """(follower, followee, following?, event ms): follow upserts, unfollow deletes, by event time."""
        ins_a, ins_b, del_a, del_b = [], [], [], []
        for follower, followee, following, ms in edges:
            ts = write_ts_us(ms)
            if following:
                ins_a.append((followee, follower, _dt(ms), ts))
                ins_b.append((follower, followee, _dt(ms), ts))
            else:
                del_a.append((ts, followee, follower))
                del_b.append((ts, follower, followee))
        await cql.execute_many(self.session, self._stmts["insert_follower"], ins_a)
        await cql.execute_many(self.session, self._stmts["insert_following"], ins_b)
        await cql.execute_many(self.session, self._stmts["delete_follower"], del_a)
        await cql.execute_many(self.session, self._stmts["delete_following"], del_b)

    async def follower_pages(self, user_id: int, page_size: int) -> AsyncIterator[list[int]]:
        async for page in cql.pages(self.session, self._stmts["followers"], (user_id,), page_size):
            yield [r["follower_id"] for r in page]

    async def following(self, user_id: int, limit: int = 5000) -> list[int]:
        rows = await cql.execute(self.session, self._stmts["following"], (user_id, limit))
        return [r["followee_id"] for r in rows]


def _user(r: dict[str, Any]) -> User:
    return User(user_id=r["user_id"], handle=r["handle"], display_name=r["display_name"],
                bio=r["bio"] or "", protected=bool(r["protected"]), region=r["region"],
                created_at=_ms(r["created_at"]))


def _tweet(r: dict[str, Any]) -> Tweet:
    return Tweet(tweet_id=r["tweet_id"], author_id=r["author_id"], text=r["text"],
                 reply_to=r["reply_to"], quote_of=r["quote_of"], created_at=_ms(r["created_at"]))


_STATEMENTS = {
    "insert_user": "INSERT INTO users (user_id, handle, display_name, bio, protected, region, created_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
    "insert_handle": "INSERT INTO users_by_handle (handle_folded, user_id) VALUES (?, ?) USING TIMESTAMP ?",
    "get_users": "SELECT * FROM users WHERE user_id IN ?",
    "get_handle": "SELECT user_id FROM users_by_handle WHERE handle_folded = ?",
    "insert_tweet": "INSERT INTO tweets (tweet_id, author_id, text, reply_to, quote_of, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
    "insert_by_author": "INSERT INTO tweets_by_author (author_id, tweet_id) VALUES (?, ?) USING TIMESTAMP ?",
    "get_tweets": "SELECT * FROM tweets WHERE tweet_id IN ?",
    "recent_by_author": "SELECT tweet_id FROM tweets_by_author WHERE author_id = ? LIMIT ?",
    "insert_follower": "INSERT INTO followers_by_user (user_id, follower_id, followed_at) VALUES (?, ?, ?) "
                       "USING TIMESTAMP ?",
    "insert_following": "INSERT INTO following_by_user (user_id, followee_id, followed_at) VALUES (?, ?, ?) "
                        "USING TIMESTAMP ?",
    "delete_follower": "DELETE FROM followers_by_user USING TIMESTAMP ? WHERE user_id = ? AND follower_id = ?",
    "delete_following": "DELETE FROM following_by_user USING TIMESTAMP ? WHERE user_id = ? AND followee_id = ?",
    "followers": "SELECT follower_id FROM followers_by_user WHERE user_id = ?",
    "following": "SELECT followee_id FROM following_by_user WHERE user_id = ? LIMIT ?",
}
