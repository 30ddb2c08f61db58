"""schemas/openapi.yaml drives the server: its operations become the routes, its request schemas
validate bodies, and its `x-rate-limit` names each operation's rate-limit category."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from api.errors import bad_request
from pipeline.settings import project_root

OPENAPI_PATH = project_root() / "schemas" / "openapi.yaml"
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    authenticated: bool
    rate_limit: str | None
    body: Draft202012Validator | None


def load(path: Path = OPENAPI_PATH) -> tuple[dict[str, Any], list[Operation]]:
    doc = yaml.safe_load(path.read_text())
    default_security = doc.get("security", [])
    ops = []
    for route, item in doc["paths"].items():
        for method in METHODS:
            spec = item.get(method)
            if spec is None:
                continue
            body = None
            ref = (spec.get("requestBody", {}).get("content", {}).get("application/json", {})
                   .get("schema", {}).get("$ref"))
            if ref:
                # The whole document rides along so that nested $refs resolve.
                schema = {"$ref": ref, "components": doc["components"]}
                Draft202012Validator.check_schema(schema)
                body = Draft202012Validator(schema)
            ops.append(Operation(
                operation_id=spec["operationId"], method=method.upper(), path=route,
                authenticated=bool(spec.get("security", default_security)),
                rate_limit=spec.get("x-rate-limit"), body=body,
            ))
    return doc, ops


def check_body(validator: Draft202012Validator, body: Any) -> None:
    """400 naming the first offending field, or nothing."""
    error = next(iter(validator.iter_errors(body)), None)
    if error is not None:
        raise bad_request(field_of(error), error.message)


def field_of(error: ValidationError) -> str:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties":
        extra = [p for p in error.instance if p not in error.schema.get("properties", {})]
        path.append(extra[0] if extra else "")
    elif error.validator == "required":
        missing = [p for p in error.validator_value if p not in error.instance]
        path.append(missing[0] if missing else "")
    return ".".join(p for p in path if p) or "(body)"
