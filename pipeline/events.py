"""Event contracts: decoding raw bytes into validated events, or an InvalidEvent with a reason code."""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
from jsonschema import Draft202012Validator

from pipeline.entities import MAX_TWEET_LENGTH, tweet_length
from pipeline.errors import InvalidEvent
from pipeline.settings import project_root

SCHEMA_DIR = project_root() / "schemas" / "events"


class Reason:
    """Reason codes carried by dead-letter records (docs/EVENTS.md lists them)."""

    OVERSIZE = "oversize"
    MALFORMED_JSON = "malformed_json"
    BAD_ENVELOPE = "bad_envelope"
    UNKNOWN_TYPE = "unknown_type"
    UNKNOWN_VERSION = "unknown_version"
    WRONG_TOPIC = "wrong_topic"
    SCHEMA_VIOLATION = "schema_violation"
    TEXT_TOO_LONG = "text_too_long"


@dataclass(frozen=True, slots=True)
class Event:
    event_id: int
    type: str
    version: int
    occurred_at: int  # epoch ms
    actor: int
    data: dict[str, Any]

    def id_field(self, name: str) -> int:
        """An id inside `data`, as the int it stands for (ids travel as decimal strings)."""
        return int(self.data[name])

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": str(self.event_id), "type": self.type, "version": self.version,
            "occurred_at": self.occurred_at, "actor": str(self.actor), "data": self.data,
        }


def encode(event: Event) -> bytes:
    return orjson.dumps(event.to_json())


# Decoded events remembered per Contracts instance (a worker's batch is at most 500 records), of
# records up to this size: a packed record (tens of KiB) is read by one agent once.
DECODED_CACHE = 4096
DECODED_CACHE_MAX_BYTES = 8192


class Schema:
    """One JSON Schema, compiled twice. jsonschema-rs answers "valid?" in a few microseconds
    (bench/contracts.py: a whole decode takes 6-25 us with it, 130-210 us with jsonschema alone,
    which was most of what an agent spent per record); the pure-Python jsonschema validator, the reference
    implementation, explains a failure: the path and message a dead letter or a 400 carries. The
    two agree on every schema here (tests/unit/test_contracts_fast.py); if they ever disagree on a
    document the reference decides."""

    def __init__(self, path: Path, screen: bool = True) -> None:
        schema = json.loads(path.read_text())
        Draft202012Validator.check_schema(schema)
        self.reference = Draft202012Validator(schema)
        self.fast = jsonschema_rs.Draft202012Validator(schema)
        self.screen = screen  # False: the reference alone (bench/contracts.py's baseline)

    def first_error(self, doc: Any) -> Any:
        """The reference validator's first error, or None; the fast one screens valid documents."""
        try:
            if self.screen and self.fast.is_valid(doc):
                return None
        except ValueError:  # a value it cannot represent (none seen; the reference copes with any)
            pass
        return next(iter(self.reference.iter_errors(doc)), None)


class Contracts:
    """The compiled event schemas: the envelope plus one data schema per (type, version)."""

    def __init__(self, schema_dir: Path = SCHEMA_DIR, screen: bool = True) -> None:
        self._envelope = Schema(schema_dir / "envelope.v1.json", screen)
        self._data: dict[tuple[str, int], Schema] = {}
        for path in sorted(schema_dir.glob("*.v[0-9]*.json")):
            name, _, number = path.name.removesuffix(".json").rpartition(".v")
            if name != "envelope":
                self._data[(name, int(number))] = Schema(path, screen)
        self._versions: dict[str, set[int]] = {}
        for event_type, version in self._data:
            self._versions.setdefault(event_type, set()).add(version)
        # Several agents read one topic (its owner and the notification agent) and decode the same
        # record: recent results are kept.
        self._recent: OrderedDict[tuple[bytes, frozenset[str]], Event] = OrderedDict()

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(self._versions)

    def decode(self, raw: bytes | None, allowed_types: frozenset[str], max_bytes: int) -> Event:
        """Parse and validate one record value; raises InvalidEvent(reason, detail). Events are
        immutable by convention: a decoded event (and its data) may be handed to several agents."""
        if raw is not None:
            hit = self._recent.get((raw, allowed_types))
            if hit is not None:
                return hit
        event = self._decode(raw, allowed_types, max_bytes)
        assert raw is not None
        if len(raw) > DECODED_CACHE_MAX_BYTES:
            return event
        self._recent[(raw, allowed_types)] = event
        if len(self._recent) > DECODED_CACHE:
            self._recent.popitem(last=False)
        return event

    def _decode(self, raw: bytes | None, allowed_types: frozenset[str], max_bytes: int) -> Event:
        if raw is None:
            raise InvalidEvent(Reason.MALFORMED_JSON, "empty record value (tombstone)")
        if len(raw) > max_bytes:
            raise InvalidEvent(Reason.OVERSIZE, f"{len(raw)} bytes > limit {max_bytes}")
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidEvent(Reason.MALFORMED_JSON, str(exc)) from None
        if not isinstance(doc, dict):
            raise InvalidEvent(Reason.BAD_ENVELOPE, f"expected a JSON object, got {type(doc).__name__}")
        _check(self._envelope, doc, Reason.BAD_ENVELOPE, "")
        event_type, version = doc["type"], doc["version"]
        versions = self._versions.get(event_type)
        if versions is None:
            raise InvalidEvent(Reason.UNKNOWN_TYPE, f"type {event_type!r}")
        if version not in versions:
            raise InvalidEvent(Reason.UNKNOWN_VERSION, f"{event_type} version {version}; known {sorted(versions)}")
        if event_type not in allowed_types:
            raise InvalidEvent(Reason.WRONG_TOPIC, f"{event_type} does not belong on this topic")
        _check(self._data[(event_type, version)], doc["data"], Reason.SCHEMA_VIOLATION, "data")
        _check_semantics(event_type, doc["data"])
        return Event(
            event_id=int(doc["event_id"]), type=event_type, version=version,
            occurred_at=doc["occurred_at"], actor=int(doc["actor"]), data=doc["data"],
        )

    def check_data(self, event_type: str, version: int, data: dict[str, Any]) -> None:
        """Validate a payload built at the edge (the write API) before it is produced."""
        _check(self._data[(event_type, version)], data, Reason.SCHEMA_VIOLATION, "data")


def _check_semantics(event_type: str, data: dict[str, Any]) -> None:
    """Rules JSON Schema cannot express."""
    if event_type == "tweet.created":
        length = tweet_length(data["text"])
        if length > MAX_TWEET_LENGTH:
            raise InvalidEvent(Reason.TEXT_TOO_LONG, f"data.text: {length} > {MAX_TWEET_LENGTH} (docs/TEXT.md)")


def _check(schema: Schema, doc: Any, reason: str, root: str) -> None:
    error = schema.first_error(doc)
    if error is not None:
        where = ".".join([root, *map(str, error.absolute_path)]).strip(".") or "(root)"
        raise InvalidEvent(reason, f"{where}: {error.message}")
