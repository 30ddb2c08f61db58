"""bench/node/openloop.mjs, the benchmarks' open-loop HTTP load generator: every request is
answered and counted once, with its method, bearer token and body, over keep-alive connections
(responses with a length or chunked), and a refused connection is an error, not a hang."""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web

from bench.common import open_loop
from tests.conftest import free_port


@pytest.fixture
def server() -> Iterator[tuple[str, collections.Counter[str], set[tuple[str, int]]]]:
    seen: collections.Counter[str] = collections.Counter()
    peers: set[tuple[str, int]] = set()

    async def post(request: web.Request) -> web.Response:
        body = await request.read()
        seen[f"{request.headers.get('Authorization')} {body.decode()}"] += 1
        return web.json_response({"n": len(body)}, status=201 if len(body) < 10 else 413)

    async def chunked(request: web.Request) -> web.StreamResponse:
        seen["chunked"] += 1
        assert request.transport is not None
        peers.add(request.transport.get_extra_info("peername"))
        response = web.StreamResponse()
        await response.prepare(request)
        for part in (b"one", b"two", b"three"):
            await response.write(part)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/p", post)
    app.router.add_get("/c", chunked)
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", seen, peers
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.run_until_complete(runner.cleanup())
        loop.close()


Server = tuple[str, collections.Counter[str], set[tuple[str, int]]]


def test_posts_with_tokens_and_bodies_round_robin(server: Server) -> None:
    url, seen, _peers = server
    out = open_loop(f"{url}/p", 100, 1, method="POST", headers={"Content-Type": "application/json"},
                    bodies=['{"a":1}', '{"a":"a long body"}'], tokens=["t1", "t2"], warmup_s=0.5)
    assert out["requests"] == 100 and out["errors"] == 0
    # Request i carries body i % 2 and token i % 2: the first body always with t1, the long one with t2.
    assert out["statuses"] == {"201": 50, "413": 50}
    assert out["warmup"]["statuses"] == {"201": 25, "413": 25}
    assert seen == {'Bearer t1 {"a":1}': 75, 'Bearer t2 {"a":"a long body"}': 75}
    assert len(out["per_second"]) == 1 and out["latency_ms"]["max"] > 0


def test_chunked_responses_on_kept_alive_connections(server: Server) -> None:
    url, seen, peers = server
    out = open_loop(f"{url}/c", 200, 1)
    assert out["statuses"] == {"200": 200} and out["errors"] == 0
    assert seen["chunked"] == 200
    # One request at a time per connection, and a connection freed is used again: at 200/s with
    # answers in milliseconds a few connections carry them all (one each would be 200).
    assert 1 <= len(peers) < 50


def test_refused_connections_are_errors() -> None:
    out = open_loop(f"http://127.0.0.1:{free_port()}/", 50, 1)
    assert out["errors"] == 50 and out["statuses"] == {}
