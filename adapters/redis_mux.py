"""The commands a read path sends to Redis, over a pool (redis-py) or one multiplexed connection.

`Multiplexed` carries every command of every request in flight in one process over a single
connection. Commands issued in the same turn of the event loop leave in one write; Redis answers
one connection's commands in order, so each reply goes to the oldest waiting caller. redis-py's
pool instead checks a connection out and back in, arms a timeout and a retry, and writes once,
for every command: on the home read that was about a third of the API's CPU
(`bench/fanout.py --profile`).

Failure model: a lost connection fails every command waiting on it with ConnectionError (the API
answers 503); the next command connects again. A connection that has commands waiting and has
not answered any of them for `timeout_s` is closed the same way (TimeoutError), so a stalled
server costs a request at most two timeouts. Nothing is retried here: a caller that sent a
command whose reply was lost cannot know whether it ran.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol, cast

import hiredis
import redis.asyncio as aioredis
from redis._parsers.base import BaseParser
from redis.asyncio.connection import parse_url
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


class Commands(Protocol):
    """What the read paths need: a command, and a script by its hash."""

    async def call(self, *args: Any) -> Any: ...

    async def script(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any: ...


class Pooled:
    """Commands through a redis-py client and its pool (the agents, the tests)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def call(self, *args: Any) -> Any:
        return await self.client.execute_command(*args)  # type: ignore[no-untyped-call]

    async def script(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        return await script(keys=keys, args=args)


class _ReplyError(Exception):
    """A Redis error reply, as hiredis hands it over (turned into redis-py's class by _error)."""


def _error(reply: _ReplyError) -> ResponseError:
    error: ResponseError = BaseParser.parse_error(str(reply))  # type: ignore[no-untyped-call]
    return error


_MORE = object()  # hiredis: no complete reply buffered yet


class _Connection(asyncio.Protocol):
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
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
        if self.lost is None:
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


class Multiplexed:
    """One connection per process (per event loop), shared by every request; see the module doc."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.params = parse_url(url)
        self.timeout_s = timeout_s
        self._conn: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None

    async def call(self, *args: Any) -> Any:
        conn = self._conn
        if conn is None or not conn.alive:
            conn = await self._connected()
        return await conn.send(hiredis.pack_command(args))

    async def script(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        try:
            return await self.call("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:  # Redis restarted or flushed its scripts: EVAL caches it again
            return await self.call("EVAL", script.script, len(keys), *keys, *args)

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
        try:
            async with asyncio.timeout(self.timeout_s):
                _transport, conn = await loop.create_connection(lambda: _Connection(self.timeout_s), host, port)
                setup: list[tuple[Any, ...]] = []
                if self.params.get("password"):
                    user = self.params.get("username")
                    setup.append(("AUTH", user, self.params["password"]) if user else ("AUTH", self.params["password"]))
                if self.params.get("db"):
                    setup.append(("SELECT", self.params["db"]))
                for command in setup:
                    await conn.send(hiredis.pack_command(command))
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"cannot connect to Redis at {host}:{port}: {exc}") from exc
        self._conn = conn
        return conn

    async def aclose(self) -> None:
        if self._conn is not None and self._conn.transport is not None:
            self._conn.transport.close()
        self._conn = None
