"""Every error is a JSON body with a stable code; no traceback leaves the server."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import cassandra
import orjson
import redis.exceptions
from aiohttp import web

from adapters.ratelimit import Decision

log = logging.getLogger("starling.api")


class ApiError(Exception):
    """An expected failure, answered as {"error": {"code", "message", "field"?}}."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}

    def response(self) -> web.Response:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return json_response({"error": body}, status=self.status, headers=self.headers)


def bad_request(field: str, message: str) -> ApiError:
    return ApiError(400, "invalid_request", message, field=field)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json",
                        headers=headers)


# Failures of the stores rather than of the request: 503 with Retry-After, not 500.
UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, cassandra.DriverException,
               cassandra.RequestExecutionException, TimeoutError)

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type"}


@web.middleware
async def error_middleware(request: web.Request,
                           handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        keep = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after", "www-authenticate")}
        return ApiError(exc.status, code, exc.reason, headers=keep).response()
    except UNAVAILABLE as exc:
        # A store is down or every connection is busy (overload): tell the client to come back.
        log.warning("store unavailable on %s %s: %r", request.method, request.path, exc)
        return ApiError(503, "unavailable", "a backing store is unavailable or overloaded; retry later",
                        headers={"Retry-After": "1"}).response()
    except Exception:  # noqa: BLE001 - logged here, never shown to the client
        log.exception("unhandled error on %s %s", request.method, request.path)
        return ApiError(500, "internal", "internal server error").response()


def rate_limited(category: str | None, decision: Decision) -> ApiError:
    return ApiError(429, "rate_limited", f"rate limit for {category} exceeded; retry after the reset",
                    headers=decision.headers())
