"""The two validators behind every contract (pipeline/events.py, Schema) agree: whatever the fast
one (jsonschema-rs) accepts, the reference one (jsonschema) accepts too, on documents generated
from each schema around its edges (patterns, lengths, bounds, enums, missing and extra fields).
The converse may differ only where the reference decides anyway (it is asked whenever the fast
one refuses), so acceptance is exactly the reference's."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.events import SCHEMA_DIR, Schema

SCHEMAS = sorted(SCHEMA_DIR.glob("*.json"))
COMPILED = {p: Schema(p) for p in SCHEMAS}
RAW = {p: json.loads(p.read_text()) for p in SCHEMAS}

ODD_STRINGS = st.sampled_from(["", "0", "12\n", "\n12", " 12", "١٢٣", "𝟙2", "1" * 19, "1" * 20, "x" * 300,
                               "https://", "http://x", "é" * 10, "image"])
ODD_NUMBERS = st.sampled_from([0, -1, 1, 1.0, 0.5, 2**53 - 1, 2**53, 2**63, 2**64, 10**30, -(10**30),
                               float("inf"), float("nan")])
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | ODD_NUMBERS | st.text(max_size=30) | ODD_STRINGS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return resolve(node, root)


def near(schema: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that mostly fit `schema` (7 in 8), with every kind of near miss mixed in."""
    fits, misses = fit(schema, root), miss(schema, root)
    return st.integers(0, 7).flatmap(lambda k: misses if k == 0 else fits)


def fit(schema: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    schema = resolve(schema, root)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(re.compile(schema["pattern"]), fullmatch=True)
        return st.text(min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 64), 64))
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**70)), schema.get("maximum", 2**70))
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(near(schema.get("items", {}), root), min_size=schema.get("minItems", 0),
                        max_size=min(schema.get("maxItems", 4), 4))
    if kind == "object":
        return obj(schema, root)
    return ANY_JSON


def miss(schema: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    schema = resolve(schema, root)
    kind = schema.get("type")
    if kind == "string":
        lo, hi = schema.get("minLength", 0), schema.get("maxLength", 64)
        return st.sampled_from([lo, max(lo - 1, 0), hi, hi + 1]).map(lambda n: "7" * n) | ODD_STRINGS | ANY_JSON
    if kind == "integer":
        lo, hi = schema.get("minimum", -(2**70)), schema.get("maximum", 2**70)
        return st.sampled_from([lo - 1, hi + 1, float(lo), True]) | ODD_NUMBERS | ANY_JSON
    if kind == "boolean":
        return st.sampled_from([0, 1, "true", None])
    if kind == "array":
        items = fit(schema.get("items", {}), root)
        lo, hi = schema.get("minItems", 0), schema.get("maxItems", 4)
        return st.sampled_from([max(lo - 1, 0), hi + 1]).flatmap(lambda n: st.lists(items, min_size=n, max_size=n)) | ANY_JSON
    return ODD_STRINGS | ANY_JSON


def obj(schema: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    props = schema.get("properties", {})
    required = set(schema.get("required", []))

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        out = {}
        for name, sub in props.items():
            keep = draw(st.sampled_from([True] * 15 + [False])) if name in required else draw(st.booleans())
            if keep:
                out[name] = draw(near(sub, root))
        if draw(st.sampled_from([False] * 9 + [True])):
            out[draw(st.text(min_size=1, max_size=8))] = draw(ANY_JSON)
        return out

    return build()


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.name)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_fast_validator_accepts_nothing_the_reference_refuses(path, data):
    raw, schema = RAW[path], COMPILED[path]
    doc = data.draw(obj(raw, raw))
    if schema.fast.is_valid(doc):
        assert schema.reference.is_valid(doc), doc
    # What a contract check returns is the reference's verdict, whichever validator answered.
    assert (schema.first_error(doc) is None) == schema.reference.is_valid(doc)


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.name)
def test_generated_documents_reach_both_verdicts(path):
    """The generator is not vacuous: it finds documents each validator accepts and refuses."""
    raw, schema = RAW[path], COMPILED[path]
    seen: set[tuple[bool, bool]] = set()

    @settings(max_examples=200, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(doc=obj(raw, raw))
    def sample(doc: dict[str, Any]) -> None:
        seen.add((schema.fast.is_valid(doc), schema.reference.is_valid(doc)))

    sample()
    assert (True, True) in seen and (False, False) in seen, seen
