"""Polling with a bound (never a bare sleep), and event builders for e2e tests."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pipeline.events import Event
from pipeline.snowflake import Snowflake

T = TypeVar("T")
IDS = Snowflake(777)


async def eventually(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout_s: float = 60,
                     what: str = "condition") -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s}s; last value: {value!r}")
        await asyncio.sleep(0.1)


async def in_list(redis_client, key: str, tweet_id: int) -> bool:
    """Whether a timeline list (adapters/redis_store.py) holds the entry."""
    return await redis_client.lpos(key, str(tweet_id)) is not None


async def list_ids(redis_client, key: str) -> set[int]:
    """The entries a timeline list holds (without its sentinel)."""
    return {int(m) for m in await redis_client.lrange(key, 0, -1) if m.isdigit()}


def new_id() -> int:
    return IDS.next_id()


def event(etype: str, actor: int, data: dict, occurred_at: int | None = None) -> Event:
    return Event(event_id=new_id(), type=etype, version=1,
                 occurred_at=occurred_at or int(time.time() * 1000), actor=actor, data=data)


def user(uid: int, handle: str) -> Event:
    return event("user.registered", uid, {"handle": handle, "display_name": handle.title()})


def read_topic(bootstrap: str, topic: str, timeout_s: float = 30):
    """Every record of a topic, from the beginning up to its current end."""
    from adapters.kafka import read_to_end

    return list(read_to_end(bootstrap, topic, timeout_s))
