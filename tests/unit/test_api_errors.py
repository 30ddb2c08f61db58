"""The error middleware: store failures answer 503 with Retry-After, anything else a bare 500."""

import redis.exceptions
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.errors import error_middleware


async def _client(exc: Exception) -> TestClient:
    async def handler(_request: web.Request) -> web.Response:
        raise exc

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/", handler)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_an_exhausted_redis_pool_is_503_with_retry_after():
    client = await _client(redis.exceptions.ConnectionError("No connection available."))
    try:
        r = await client.get("/")
        body = await r.json()
        assert r.status == 503 and body["error"]["code"] == "unavailable" and int(r.headers["Retry-After"]) > 0
    finally:
        await client.close()


async def test_a_bug_is_500_without_details():
    client = await _client(KeyError("secret internals"))
    try:
        r = await client.get("/")
        body = await r.json()
        assert r.status == 500 and body == {"error": {"code": "internal", "message": "internal server error"}}
    finally:
        await client.close()
