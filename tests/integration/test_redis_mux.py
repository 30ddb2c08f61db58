"""The API's multiplexed Redis connection (adapters/redis_mux.py) on the real Redis: every caller
gets its own reply, whatever the interleaving; errors, lost connections and stalls fail only the
commands they concern, and the next command works again; with tracking, Redis announces changes
to what was read tracked (and only that), and a lost session or a flush says "forget everything"."""

import asyncio
import secrets

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from adapters.redis_mux import Multiplexed, Pooled
from adapters.redis_store import TimelineCache


def _prefix() -> str:
    return f"mux:{secrets.token_hex(4)}:"


async def test_concurrent_callers_each_get_their_own_reply(stack, redis_client):
    p = _prefix()
    await redis_client.mset({f"{p}{i}": f"v{i}" for i in range(500)})
    mux = Multiplexed(stack.redis_url)
    try:
        async def read(i: int) -> tuple[int, object, object]:
            one = await mux.call("GET", f"{p}{i}")
            many = await mux.call("MGET", f"{p}{i}", f"{p}{(i + 1) % 500}", f"{p}none")
            return i, one, many

        results = await asyncio.gather(*(read(i) for i in range(500)))
    finally:
        await mux.aclose()
    assert all(one == f"v{i}" and many == [f"v{i}", f"v{(i + 1) % 500}", None] for i, one, many in results)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.sampled_from(["incr", "error", "cancel"]), st.integers(0, 3)),
                     min_size=1, max_size=40))
async def test_errors_and_cancelled_callers_never_shift_replies(stack, redis_client, plan):
    p = _prefix()
    await redis_client.set(f"{p}text", "not a number")
    mux = Multiplexed(stack.redis_url)
    expected = {k: 0 for k in range(4)}
    try:
        assert await mux.call("PING") == "PONG"  # connected: every command below is sent at once
        tasks = []
        for kind, k in plan:
            if kind == "incr":
                expected[k] += 1
                tasks.append(asyncio.ensure_future(mux.call("INCR", f"{p}{k}")))
            elif kind == "error":
                tasks.append(asyncio.ensure_future(mux.call("INCR", f"{p}text")))
            else:  # a caller that gives up: its command still runs, its reply is dropped
                expected[k] += 1
                t = asyncio.ensure_future(mux.call("INCR", f"{p}{k}"))
                await asyncio.sleep(0)  # let it send
                t.cancel()
                tasks.append(t)
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        finals = [await mux.call("GET", f"{p}{k}") for k in range(4)]
    finally:
        await mux.aclose()
    seen = {k: 0 for k in range(4)}
    for (kind, k), outcome in zip(plan, outcomes):
        if kind == "incr":
            seen[k] += 1
            assert outcome == seen[k], (kind, k, outcome)
        elif kind == "error":
            assert isinstance(outcome, ResponseError) and "not an integer" in str(outcome)
        else:
            seen[k] += 1
            assert isinstance(outcome, asyncio.CancelledError)
    assert finals == [str(expected[k]) if expected[k] else None for k in range(4)]


async def test_a_script_runs_again_after_redis_forgets_it(stack, redis_client):
    mux = Multiplexed(stack.redis_url)
    cache = TimelineCache(redis_client, cap=10, reads=mux)
    reader = secrets.randbelow(1 << 40)
    try:
        await cache.fill(reader, [5 << 22, 9 << 22])
        await redis_client.script_flush()
        read = await cache.home_read(reader, 1.0, 20, None, None, 60, ("celebs-x", "celebs-x:v"), f"active-{reader}",
                                         ["v", "g"])
    finally:
        await mux.aclose()
    assert read.page == [9 << 22, 5 << 22]


async def test_a_killed_connection_fails_its_commands_and_the_next_one_reconnects(stack, redis_client):
    p = _prefix()
    name = f"{p}victim".replace(":", "-")
    mux = Multiplexed(stack.redis_url)
    try:
        await mux.call("CLIENT", "SETNAME", name)
        await mux.call("SET", f"{p}k", "1")
        waiting = asyncio.ensure_future(mux.call("BLPOP", f"{p}list", 30))  # in flight when killed
        clients = await redis_client.client_list()
        victim = next(c for c in clients if c.get("name") == name)
        await redis_client.execute_command("CLIENT", "KILL", "ID", victim["id"])
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(waiting, timeout=10)
        assert await mux.call("GET", f"{p}k") == "1"
        assert await mux.call("CLIENT", "GETNAME") is None, "a new connection"
    finally:
        await mux.aclose()


async def test_a_server_that_stops_answering_times_the_commands_out():
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # reads nothing, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    mux = Multiplexed(f"redis://127.0.0.1:{port}/0", timeout_s=0.2)
    try:
        with pytest.raises(RedisTimeoutError):
            await asyncio.wait_for(mux.call("GET", "k"), timeout=5)
        with pytest.raises(RedisTimeoutError):  # a new connection, timed out again
            await asyncio.wait_for(mux.call("GET", "k"), timeout=5)
    finally:
        await mux.aclose()
        for w in accepted:
            w.close()
        server.close()
        await server.wait_closed()
    assert len(accepted) == 2


async def test_an_unreachable_server_is_a_connection_error():
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    mux = Multiplexed(f"redis://127.0.0.1:{port}/0", timeout_s=1)
    with pytest.raises(RedisConnectionError):
        await mux.call("PING")


async def test_pooled_and_multiplexed_answer_alike(stack, redis_client):
    p = _prefix()
    await redis_client.set(f"{p}a", "x")
    mux = Multiplexed(stack.redis_url)
    try:
        for args in (("MGET", f"{p}a", f"{p}b"), ("GET", f"{p}a"), ("EXISTS", f"{p}a"), ("INCR", f"{p}n")):
            pooled = await Pooled(redis_client).call(*args)
            multiplexed = await mux.call(*args)
            if args[0] == "INCR":
                assert (pooled, multiplexed) == (1, 2)
            else:
                assert pooled == multiplexed
    finally:
        await mux.aclose()


# -- tracking: Redis announces changes to the keys read by call_tracked / script_tracked --------

class _Heard:
    """What a tracking connection's listener was told, with a bounded wait for it."""

    def __init__(self, mux: Multiplexed) -> None:
        self.messages: list[list[str] | None] = []
        self._changed = asyncio.Event()
        mux.on_invalidate(self._hear)

    def _hear(self, keys: list[str] | None) -> None:
        self.messages.append(keys)
        self._changed.set()

    @property
    def keys(self) -> list[str]:
        return [k for m in self.messages if m is not None for k in m]

    async def until(self, done, what: str, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not done():
                self._changed.clear()
                await self._changed.wait()
        assert done(), what


async def test_a_change_to_a_key_read_tracked_is_announced_and_untracked_reads_are_not(stack, redis_client):
    p = _prefix()
    await redis_client.mset({f"{p}plain": "1", f"{p}tracked": "1"})
    mux = Multiplexed(stack.redis_url, tracking=True)
    heard = _Heard(mux)
    try:
        assert await mux.call("GET", f"{p}plain") == "1"  # not opted in
        assert await mux.call_tracked("MGET", f"{p}tracked", f"{p}absent") == ["1", None]
        # Announcements come in the order of the changes: once the last one is heard, an
        # announcement of the untracked key would have come before it.
        await redis_client.set(f"{p}plain", "2")
        await redis_client.set(f"{p}absent", "now here")  # a key read while missing is tracked too
        await redis_client.set(f"{p}tracked", "2")
        await heard.until(lambda: f"{p}tracked" in heard.keys, "the tracked key announced")
        assert f"{p}absent" in heard.keys
        assert f"{p}plain" not in heard.keys
        # Announced once: a second change is not, until the key is read tracked again.
        await redis_client.set(f"{p}tracked", "3")
        assert await mux.call_tracked("GET", f"{p}tracked") == "3"
        await redis_client.set(f"{p}tracked", "4")
        await heard.until(lambda: heard.keys.count(f"{p}tracked") == 2, "announced again after a new read")
    finally:
        await mux.aclose()


async def test_keys_a_tracked_script_reads_are_announced(stack, redis_client):
    p = _prefix()
    await redis_client.hset(f"{p}h", mapping={"likes": 1})
    script = redis_client.register_script("return redis.call('HGET', KEYS[1], 'likes')")
    mux = Multiplexed(stack.redis_url, tracking=True)
    heard = _Heard(mux)
    try:
        assert await mux.script_tracked(script, [f"{p}h"], []) == "1"
        await redis_client.hincrby(f"{p}h", "likes", 1)
        await heard.until(lambda: f"{p}h" in heard.keys, "the script's key announced")
    finally:
        await mux.aclose()


async def test_a_flush_tells_the_listeners_to_forget_everything(stack):
    """A flush (FLUSHALL, or FLUSHDB as here, on a database no other test uses) is announced as
    nil: every key may be gone."""
    url = stack.redis_url.rsplit("/", 1)[0] + "/9"
    mux = Multiplexed(url, tracking=True)
    heard = _Heard(mux)
    other = aioredis.from_url(url)
    try:
        await mux.call_tracked("GET", "k")
        await other.flushdb()
        await heard.until(lambda: None in heard.messages, "a forget-everything")
    finally:
        await mux.aclose()
        await other.aclose()


@pytest.mark.parametrize("victim", ["announcements", "commands"])
async def test_losing_either_connection_forgets_everything_and_tracking_starts_again(stack, redis_client, victim):
    p = _prefix()
    mux = Multiplexed(stack.redis_url, tracking=True)
    heard = _Heard(mux)
    try:
        await mux.call_tracked("GET", f"{p}k")
        commands_id = await mux.call("CLIENT", "ID")
        tracking = await mux.call("CLIENT", "TRACKINGINFO")
        redirect = tracking[tracking.index("redirect") + 1]
        assert redirect != commands_id
        await redis_client.execute_command("CLIENT", "KILL", "ID", redirect if victim == "announcements" else commands_id)
        await heard.until(lambda: None in heard.messages, "a forget-everything on the lost session")
        # The next command opens a new session, which tracks again.
        assert await mux.call_tracked("GET", f"{p}k") is None
        assert await mux.call("CLIENT", "ID") != commands_id
        await redis_client.set(f"{p}k", "v")
        await heard.until(lambda: f"{p}k" in heard.keys, "the new session's announcement")
    finally:
        await mux.aclose()


async def test_a_silent_announcements_connection_is_found_by_its_heartbeat(stack, redis_client):
    """Redis stops answering (CLIENT PAUSE: every client, for 2 s) while nothing else is sent: only
    the heartbeat's PING on the announcements' connection can notice, and its stall means
    announcements may be lost, so the listeners forget everything."""
    mux = Multiplexed(stack.redis_url, tracking=True, timeout_s=0.3, heartbeat_s=0.1)
    heard = _Heard(mux)
    try:
        await mux.call_tracked("GET", f"{_prefix()}k")
        await redis_client.execute_command("CLIENT", "PAUSE", 2000, "ALL")
        await heard.until(lambda: None in heard.messages, "a forget-everything from the heartbeat", timeout_s=1.5)
    finally:
        await redis_client.execute_command("CLIENT", "UNPAUSE")
        await mux.aclose()
