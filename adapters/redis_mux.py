"""The commands a read path sends to Redis, over a pool (redis-py) or one multiplexed connection.

`Multiplexed` carries every command of every request in flight in one process over a single
connection. Commands issued in the same turn of the event loop leave in one write; Redis answers
one connection's commands in order, so each reply goes to the oldest waiting caller. redis-py's
pool instead checks a connection out and back in, arms a timeout and a retry, and writes once,
for every command: on the home read that was about a third of the API's CPU
(`bench/fanout.py --profile`).

Client-side caching (`Multiplexed(url, tracking=True)`): the connection asks Redis to track the
keys read by `call_tracked` / `script_tracked` (CLIENT TRACKING ... OPTIN: nothing else is
tracked, so the timelines a home read touches, rewritten by every fan-out, send nothing). Redis
then announces each change of such a key (a write by anyone, expiry, eviction) once, on a second
connection subscribed to `__redis__:invalidate` (RESP2's REDIRECT form), and the listeners given
to `on_invalidate` hear the keys. They hear None when everything must be forgotten: FLUSHALL, or
either connection lost (announcements may have been missed; the next command connects and tracks
anew). The announcements' connection is otherwise silent, so a PING goes down it every
`heartbeat_s`: a connection that died without closing fails the stall check below like any other.

Failure model: a lost connection fails every command waiting on it with ConnectionError (the API
answers 503); the next command connects again. A connection that has commands waiting and has
not answered any of them for `timeout_s` is closed the same way (TimeoutError), so a stalled
server costs a request at most two timeouts. Nothing is retried here: a caller that sent a
command whose reply was lost cannot know whether it ran.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, cast

import hiredis
import redis.asyncio as aioredis
from redis._parsers.base import BaseParser
from redis.asyncio.connection import parse_url
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


# Keys whose change Redis announced, or None: forget everything (see the module doc).
Invalidation = Callable[[list[str] | None], None]


class Commands(Protocol):
    """What the read paths need: a command, and a script by its hash; the `_tracked` forms ask
    to hear of changes to the keys they read (when `tracking`)."""

    tracking: bool

    async def call(self, *args: Any) -> Any: ...

    async def script(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any: ...

    async def call_tracked(self, *args: Any) -> Any: ...

    async def script_tracked(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any: ...

    def on_invalidate(self, listener: Invalidation) -> None: ...


class Pooled:
    """Commands through a redis-py client and its pool (the agents, the tests); tracks nothing."""

    tracking = False

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def call(self, *args: Any) -> Any:
        return await self.client.execute_command(*args)  # type: ignore[no-untyped-call]

    async def script(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        return await script(keys=keys, args=args)

    call_tracked = call
    script_tracked = script

    def on_invalidate(self, listener: Invalidation) -> None:
        pass  # nothing is ever announced


class _ReplyError(Exception):
    """A Redis error reply, as hiredis hands it over (turned into redis-py's class by _error)."""


def _error(reply: _ReplyError) -> ResponseError:
    error: ResponseError = BaseParser.parse_error(str(reply))  # type: ignore[no-untyped-call]
    return error


_MORE = object()  # hiredis: no complete reply buffered yet


def _pack(*parts: Any) -> bytes:
    packed: bytes = hiredis.pack_command(parts)
    return packed


_CACHING_YES = _pack("CLIENT", "CACHING", "YES")
_PING = _pack("PING")
_INVALIDATE_CHANNEL = "__redis__:invalidate"


class _Connection(asyncio.Protocol):
    def __init__(self, timeout_s: float, on_message: Callable[[Any], None] | None = None,
                 on_lost: Callable[[], None] | None = None) -> None:
        """`on_message`: a subscriber connection's published messages (the reply queue gets the
        rest); `on_lost`: called once when the connection fails."""
        self.timeout_s = timeout_s
        self.on_message = on_message
        self.on_lost = on_lost
        self.reader = hiredis.Reader(encoding="utf-8", replyError=_ReplyError, notEnoughData=_MORE)
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.outgoing: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.lost: BaseException | None = None
        self.answered = 0  # replies so far, for the stall check
        self._checked_at = -1
        self._watch: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    @property
    def alive(self) -> bool:
        return self.transport is not None and self.lost is None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no asyncio.Transport subclass

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        if self.lost is not None:
            raise RedisConnectionError(f"Redis connection lost: {self.lost}")
        if not self.outgoing:
            self._loop.call_soon(self._flush)
        self.outgoing.append(packed)
        future: asyncio.Future[Any] = self._loop.create_future()
        self.waiting.append(future)
        if self._watch is None:
            self._checked_at = self.answered
            self._watch = self._loop.call_later(self.timeout_s, self._check_stall)
        return future

    async def send_tracked(self, packed: bytes) -> Any:
        """The command right after CLIENT CACHING YES (nothing can come between: both are queued
        here, in one go), so Redis tracks the keys it reads."""
        caching = self.send(_CACHING_YES)
        reply = self.send(packed)
        try:
            await caching
        except BaseException:
            reply.add_done_callback(_retrieve)  # its outcome no longer matters
            raise
        return await reply

    def _flush(self) -> None:
        if self.outgoing and self.transport is not None and self.lost is None:
            self.transport.write(b"".join(self.outgoing))
        self.outgoing.clear()

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError as exc:
                self._fail(RedisConnectionError(f"Redis protocol error: {exc}"))
                return
            if reply is _MORE:
                return
            if self.on_message is not None and type(reply) is list and reply[0] == "message":
                self.on_message(reply[2])
                continue
            self.answered += 1
            future = self.waiting.popleft()
            if future.done():  # its caller was cancelled
                continue
            if isinstance(reply, _ReplyError):
                future.set_exception(_error(reply))
            else:
                future.set_result(reply)

    def _check_stall(self) -> None:
        self._watch = None
        if not self.waiting or self.lost is not None:
            return
        if self.answered == self._checked_at:
            self._fail(RedisTimeoutError(f"Redis answered nothing for {self.timeout_s}s"))
            return
        self._checked_at = self.answered
        self._watch = self._loop.call_later(self.timeout_s, self._check_stall)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisConnectionError(f"Redis closed the connection: {exc or 'EOF'}"))

    def _fail(self, exc: Exception) -> None:
        first = self.lost is None
        if first:
            self.lost = exc
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if self.transport is not None:
            self.transport.abort()
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(exc)
        self.outgoing.clear()
        if first and self.on_lost is not None:
            self.on_lost()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class Multiplexed:
    """One connection per process (per event loop), shared by every request, and with `tracking`
    a second one for Redis's announcements; see the module doc."""

    def __init__(self, url: str, timeout_s: float = 5.0, tracking: bool = False, heartbeat_s: float = 1.0) -> None:
        self.params = parse_url(url)
        self.timeout_s = timeout_s
        self.tracking = tracking
        self.heartbeat_s = heartbeat_s
        self._heartbeat: asyncio.Task[None] | None = None
        self._conn: _Connection | None = None
        self._announcements: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None
        self._listeners: list[Invalidation] = []

    def on_invalidate(self, listener: Invalidation) -> None:
        self._listeners.append(listener)

    async def call(self, *args: Any) -> Any:
        return await (await self._live()).send(hiredis.pack_command(args))

    async def call_tracked(self, *args: Any) -> Any:
        if not self.tracking:
            return await self.call(*args)
        return await (await self._live()).send_tracked(hiredis.pack_command(args))

    async def script(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        return await self._script(self.call, script, keys, args)

    async def script_tracked(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """A script whose reads are tracked like a command's (Redis tracks them for the caller)."""
        return await self._script(self.call_tracked, script, keys, args)

    @staticmethod
    async def _script(call: Callable[..., Awaitable[Any]], script: AsyncScript, keys: Sequence[Any],
                      args: Sequence[Any]) -> Any:
        try:
            return await call("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:  # Redis restarted or flushed its scripts: EVAL caches it again
            return await call("EVAL", script.script, len(keys), *keys, *args)

    async def _live(self) -> _Connection:
        conn = self._conn
        if conn is None or not conn.alive:
            conn = await self._connected()
        return conn

    def _announced(self, keys: Any) -> None:
        """A message on __redis__:invalidate: its keys, or nil after FLUSHALL / FLUSHDB."""
        self._tell(keys if isinstance(keys, list) else None)

    def _tell(self, keys: list[str] | None) -> None:
        for listener in self._listeners:
            listener(keys)

    def _session_lost(self, session: list[_Connection]) -> None:
        """A connection of a tracking session failed: announcements may have been missed, so the
        session's connections all go (the next command starts a new one) and the listeners forget
        everything."""
        if not session:
            return  # told already
        conns = session[:]
        session.clear()
        for conn in conns:
            if conn.lost is None:
                conn._fail(RedisConnectionError("Redis tracking session lost"))
        self._tell(None)

    async def _connected(self) -> _Connection:
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        task = self._connecting
        try:
            return await asyncio.shield(task)
        finally:
            if task.done() and self._connecting is task:
                self._connecting = None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        host, port = self.params.get("host", "127.0.0.1"), self.params.get("port", 6379)
        setup: list[tuple[Any, ...]] = []
        if self.params.get("password"):
            user = self.params.get("username")
            setup.append(("AUTH", user, self.params["password"]) if user else ("AUTH", self.params["password"]))
        if self.params.get("db"):
            setup.append(("SELECT", self.params["db"]))
        session: list[_Connection] = []  # a tracking session's connections, until it is lost
        on_lost = (lambda: self._session_lost(session)) if self.tracking else None

        async def connection(on_message: Callable[[Any], None] | None = None) -> _Connection:
            _t, conn = await loop.create_connection(lambda: _Connection(self.timeout_s, on_message, on_lost), host, port)
            session.append(conn)
            for command in setup:
                await conn.send(hiredis.pack_command(command))
            return conn

        announcements: _Connection | None = None
        try:
            async with asyncio.timeout(self.timeout_s):
                if self.tracking:
                    # The announcements' connection first: tracking names it by its id.
                    announcements = await connection(on_message=self._announced)
                    redirect = await announcements.send(_pack("CLIENT", "ID"))
                    await announcements.send(_pack("SUBSCRIBE", _INVALIDATE_CHANNEL))
                conn = await connection()
                if self.tracking:
                    await conn.send(_pack("CLIENT", "TRACKING", "ON", "REDIRECT", redirect, "OPTIN"))
        except BaseException as exc:
            for c in session:
                c.on_lost = None
                if c.transport is not None:
                    c.transport.abort()
            if isinstance(exc, (OSError, TimeoutError)):
                raise RedisConnectionError(f"cannot connect to Redis at {host}:{port}: {exc}") from exc
            raise
        self._conn, self._announcements = conn, announcements
        if announcements is not None:
            self._heartbeat = loop.create_task(self._beat(announcements))
        return conn

    async def _beat(self, announcements: _Connection) -> None:
        """PING the announcements' connection until it is lost (the stall check fails a silent one)."""
        while announcements.lost is None:
            await asyncio.sleep(self.heartbeat_s)
            if announcements.lost is not None:
                return
            try:
                await announcements.send(_PING)
            except (RedisConnectionError, RedisTimeoutError):
                return

    async def aclose(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        for conn in (self._conn, self._announcements):
            if conn is not None and conn.transport is not None:
                conn.on_lost = None
                conn.transport.close()
        self._conn = self._announcements = None
        if self.tracking:
            self._tell(None)
