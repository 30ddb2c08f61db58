"""The OpenAPI document and the server agree: every documented operation is served, and only those."""

import pytest
from aiohttp import web

from api import contract
from api.app import HANDLERS, create_app
from api.errors import ApiError
from pipeline.settings import Settings
from pipeline.topology import load_topology

DOC, OPS = contract.load()
SETTINGS = Settings.from_env({"STARLING_JWT_SECRET": "s" * 40})


def _routes(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        out.add((route.method, route.resource.canonical))
    return out


def test_router_serves_exactly_the_documented_operations():
    app = create_app(SETTINGS)
    documented = {(op.method, op.path) for op in OPS}
    assert _routes(app) == documented
    assert set(HANDLERS) == {op.operation_id for op in OPS}


def test_every_rate_limit_category_is_configured():
    limits = load_topology(SETTINGS.topology_path).api.rate_limits
    for op in OPS:
        assert op.rate_limit is None or op.rate_limit in limits, op.operation_id


def test_every_authenticated_operation_documents_401_and_every_write_202_and_503():
    for route, item in DOC["paths"].items():
        for method, spec in item.items():
            op = next(o for o in OPS if o.operation_id == spec["operationId"])
            if op.authenticated:
                assert "401" in spec["responses"], op.operation_id
            if op.method in ("POST", "PATCH", "DELETE"):
                # Writes are produced as events (202), except the few marked x-direct-write, with why.
                accepted = "200" if spec.get("x-direct-write") else "202"
                assert {accepted, "503", "429"} <= set(spec["responses"]), op.operation_id


def test_every_body_schema_forbids_unknown_fields():
    for name in ("UserCreate", "UserUpdate", "TweetCreate", "Media"):
        assert DOC["components"]["schemas"][name]["additionalProperties"] is False


@pytest.mark.parametrize("body, field", [
    ({"text": "x", "extra": 1}, "extra"),
    ({}, "text"),
    ({"text": "x", "media": [{"type": "image"}]}, "media.0.url"),
    ({"text": "x", "media": [{"url": "https://a", "type": "sound"}]}, "media.0.type"),
])
def test_body_errors_name_the_field(body, field):
    op = next(o for o in OPS if o.operation_id == "postTweet")
    with pytest.raises(ApiError) as info:
        contract.check_body(op.body, body)
    assert info.value.status == 400 and info.value.field == field
