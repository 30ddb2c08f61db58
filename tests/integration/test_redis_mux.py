"""The API's multiplexed Redis connection (adapters/redis_mux.py) on the real Redis: every caller
gets its own reply, whatever the interleaving; errors, lost connections and stalls fail only the
commands they concern, and the next command works again."""

import asyncio
import secrets

import pytest
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
