"""The event contracts: schemas/events/ is valid and matches topology.yaml, and every example in
docs/EVENTS.md (the per-type records and the kcat walkthrough) is accepted as documented."""

from __future__ import annotations

import copy
import json
import re
import shlex
from dataclasses import dataclass

import orjson
import pytest
from jsonschema import Draft202012Validator

from pipeline.errors import InvalidEvent
from pipeline.events import SCHEMA_DIR, Contracts, Reason
from pipeline.routing import KEY_FIELD, partition_key
from pipeline.settings import Settings, project_root
from pipeline.topology import load_topology

C = Contracts()
TOPO = load_topology(Settings.from_env({}).topology_path)
MAX = 65536
DOC = (project_root() / "docs" / "EVENTS.md").read_text()
SCHEMA_FILES = sorted(SCHEMA_DIR.glob("*.json"))
DATA_SCHEMA_FILES = [p for p in SCHEMA_FILES if not p.name.startswith("envelope.")]
MALFORMED = b"{not json"
BROKER = "127.0.0.1:9092"


def allowed(topic: str) -> frozenset[str]:
    return frozenset(TOPO.topics[topic].events)


def topic_of_type(event_type: str) -> str:
    return TOPO.topic_for_event(event_type).name


# --- the schema files ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_schema_file_is_valid_draft_2020_12(path):
    schema = json.loads(path.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://starling.dev/schemas/events/{path.name}"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["title"] and schema["description"]


@pytest.mark.parametrize("path", DATA_SCHEMA_FILES, ids=lambda p: p.name)
def test_data_schema_names_its_topic_and_key(path):
    schema = json.loads(path.read_text())
    event_type, _, version = path.name.removesuffix(".json").rpartition(".v")
    assert version.isdigit() and int(version) >= 1
    assert schema["title"] == f"{event_type} v{version} (data)"
    assert f"Topic {topic_of_type(event_type)}, key = " in schema["description"]
    key_field = KEY_FIELD[event_type]
    if key_field is not None:
        assert f"key = {key_field}" in schema["description"]
        assert key_field in schema["required"], "the key comes from a required field"


def test_every_topic_event_type_has_a_schema_and_vice_versa():
    assert TOPO.event_types == C.event_types
    assert set(KEY_FIELD) == C.event_types


def test_ids_in_schemas_share_one_definition():
    id_def = {"type": "string", "pattern": "^[1-9][0-9]{0,18}$", "maxLength": 19}
    for path in DATA_SCHEMA_FILES:
        for name, prop in json.loads(path.read_text())["properties"].items():
            if name.endswith("_id") or name in {"reply_to", "quote_of"}:
                assert prop == id_def, f"{path.name}: {name}"


# --- docs/EVENTS.md ------------------------------------------------------------------------------

FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)


def fenced(lang: str) -> list[str]:
    return [body for tag, body in FENCE.findall(DOC) if tag == lang]


@dataclass(frozen=True)
class Kcat:
    mode: str            # -P or -C
    args: dict[str, str]
    stdin: list[str]     # the heredoc's lines


def parse_kcat(block: str) -> Kcat:
    lines = block.rstrip("\n").split("\n")
    first = lines[0]
    heredoc = re.search(r"\s*<<'(\w+)'$", first)
    argv = shlex.split(first[: heredoc.start()] if heredoc else first)
    assert argv[0] == "kcat", f"not a kcat command: {first!r}"
    mode = next(a for a in argv if a in {"-P", "-C"})
    args = {argv[i]: argv[i + 1] for i in range(1, len(argv) - 1) if argv[i] in {"-b", "-t", "-k", "-f", "-o", "-X"}}
    if heredoc:
        assert lines[-1] == heredoc.group(1), "the heredoc ends the block"
        stdin = lines[1:-1]
    else:
        assert len(lines) == 1, f"one command per block: {block!r}"
        stdin = []
    return Kcat(mode, args, stdin)


KCAT = [parse_kcat(b) for b in fenced("bash")]
PRODUCE = [k for k in KCAT if k.mode == "-P"]
JSON_EXAMPLES = fenced("json")


def test_doc_has_the_walkthrough_and_the_sections():
    assert len(PRODUCE) == 7
    assert [k.mode for k in KCAT] == ["-P"] * 7 + ["-C"]
    assert "## Produce with kcat" in DOC
    assert "## Consume the dead-letter topic" in DOC
    assert "## Output topics\n\n### trends\n" in DOC


@pytest.mark.parametrize("block", fenced("bash"))
def test_every_bash_block_is_exactly_one_kcat_command(block):
    assert block.startswith("kcat ")
    assert block.count("kcat ") == 1
    assert "\\\n" not in block, "no continuation lines"


@pytest.mark.parametrize("example", JSON_EXAMPLES)
def test_json_example_decodes_on_its_topic(example):
    doc = json.loads(example)
    event = C.decode(example.strip().encode(), allowed(topic_of_type(doc["type"])), MAX)
    assert event.type == doc["type"]


def test_every_event_type_has_a_section_with_its_example():
    sections = dict(re.findall(r"^### ([a-z]+\.[a-z_]+)\n(.*?)(?=^##)", DOC, re.M | re.S))
    assert set(sections) == C.event_types
    for event_type, text in sections.items():
        examples = [json.loads(body) for tag, body in FENCE.findall(text) if tag == "json"]
        assert [e["type"] for e in examples] == [event_type]
        assert f"Topic `{topic_of_type(event_type)}`" in text.replace("\n", " ")


def test_event_ids_in_the_doc_are_distinct():
    docs = [json.loads(e) for e in JSON_EXAMPLES]
    docs += [json.loads(k.stdin[0]) for k in PRODUCE if k.stdin[0].encode() != MALFORMED]
    ids = [d["event_id"] for d in docs]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("cmd", PRODUCE, ids=lambda k: f"{k.args.get('-t')}:{k.args.get('-k')}")
def test_kcat_example_is_accepted_on_its_topic_with_its_key(cmd):
    assert cmd.args["-b"] == BROKER
    assert cmd.args["-t"] in TOPO.topics
    assert len(cmd.stdin) == 1, "kcat -P sends one message per line: one JSON document per line"
    raw = cmd.stdin[0].encode()
    if raw == MALFORMED:
        with pytest.raises(InvalidEvent) as info:
            C.decode(raw, allowed(cmd.args["-t"]), MAX)
        assert info.value.reason == Reason.MALFORMED_JSON
        return
    event = C.decode(raw, allowed(cmd.args["-t"]), MAX)
    assert topic_of_type(event.type) == cmd.args["-t"]
    assert cmd.args["-k"] == partition_key(event).decode()
    assert 1_794_000_000_000 <= event.occurred_at <= 1_796_000_000_000


def test_walkthrough_tells_the_documented_story():
    steps = []
    for cmd in PRODUCE:
        raw = cmd.stdin[0].encode()
        if raw == MALFORMED:
            steps.append(("malformed", cmd.args["-t"]))
            continue
        e = C.decode(raw, allowed(cmd.args["-t"]), MAX)
        steps.append((e.type, e.actor, dict(e.data)))
    assert steps[0][:2] == ("user.registered", 1001)
    assert steps[1][:2] == ("user.registered", 1002)
    assert steps[2] == ("follow.created", 1001, {"followee_id": "1002"})
    assert steps[3][:2] == ("tweet.created", 1002) and steps[3][2]["tweet_id"] == "2001"
    assert steps[4] == ("like.created", 1001, {"tweet_id": "2001"})
    assert steps[5] == ("retweet.created", 1001, {"tweet_id": "2001", "retweet_id": "2002"})
    assert steps[6] == ("malformed", "ingest.tweets")
    times = [json.loads(k.stdin[0])["occurred_at"] for k in PRODUCE[:6]]
    assert times == sorted(times)


def test_consume_example_reads_the_dead_letter_topic_and_terminates():
    (consume,) = [k for k in KCAT if k.mode == "-C"]
    assert consume.args["-b"] == BROKER and consume.args["-t"] == "deadletter"
    assert "%h" in consume.args["-f"]
    assert "-e" in fenced("bash")[-1].split()


def test_doc_lists_every_reason_code_and_header():
    codes = set(re.findall(r"^\| `([a-z_]+)` \|", DOC.split("### Reason codes", 1)[1].split("###", 1)[0], re.M))
    assert codes == {
        "oversize", "malformed_json", "bad_envelope", "unknown_type", "unknown_version", "wrong_topic",
        "schema_violation", "text_too_long", "unknown_reference", "not_owner", "handle_taken",
        "processing_failed",
    }
    reasons = {v for k, v in vars(Reason).items() if k.isupper()}
    assert reasons <= codes, "every reason the code raises is documented"
    for header in ("reason", "detail", "source_topic", "source_partition", "source_offset", "failed_at",
                   "retry_topic", "retry_attempt", "retry_not_before"):
        assert f"| `{header}` |" in DOC


# --- negative cases: every bad `data` is a schema_violation --------------------------------------

VALID: dict[str, dict] = {
    "user.updated": {"display_name": "Ada", "bio": "", "protected": True, "region": "GB"},
    "tweet.created": {"tweet_id": "2001", "text": "hi", "reply_to": "1", "quote_of": "2",
                      "media": [{"url": "https://x.example/a.png", "type": "image", "alt_text": "a"}]},
    "tweet.deleted": {"tweet_id": "2001"},
    "like.created": {"tweet_id": "2001"},
    "like.removed": {"tweet_id": "2001"},
    "retweet.created": {"tweet_id": "2001", "retweet_id": "2002"},
    "retweet.removed": {"tweet_id": "2001"},
    "block.created": {"blocked_id": "1002"},
    "block.removed": {"blocked_id": "1002"},
    "mute.created": {"muted_id": "1002"},
    "mute.removed": {"muted_id": "1002"},
}


def record(event_type: str, data: dict) -> bytes:
    return orjson.dumps({"event_id": "9999", "type": event_type, "version": 1,
                         "occurred_at": 1_795_000_000_000, "actor": "1001", "data": data})


def decode(event_type: str, data: dict):
    return C.decode(record(event_type, data), allowed(topic_of_type(event_type)), MAX)


@pytest.mark.parametrize("event_type", sorted(VALID))
def test_valid_data_is_accepted(event_type):
    assert decode(event_type, VALID[event_type]).data == VALID[event_type]


def _without(d: dict, key: str) -> dict:
    return {k: v for k, v in d.items() if k != key}


def _bad_cases():
    for event_type, data in sorted(VALID.items()):
        schema = json.loads((SCHEMA_DIR / f"{event_type}.v1.json").read_text())
        for field in schema.get("required", []):
            yield f"{event_type}-missing-{field}", event_type, _without(data, field)
        yield f"{event_type}-extra-field", event_type, {**data, "extra": "1"}
        first = schema.get("required", ["display_name"])[0]
        yield f"{event_type}-{first}-as-number", event_type, {**data, first: 1001}
        for id_field in [f for f in schema["properties"] if f.endswith("_id")]:
            for bad in ("0", "01", "-5", "1" * 20, "12a"):
                yield f"{event_type}-{id_field}={bad}", event_type, {**data, id_field: bad}

    ok_media = VALID["tweet.created"]["media"][0]
    tweet = VALID["tweet.created"]
    bad_media = {
        "http-url": {**ok_media, "url": "http://x.example/a.png"},
        "no-scheme-url": {**ok_media, "url": "x.example/a.png"},
        "long-url": {**ok_media, "url": "https://x.example/" + "a" * 2048},
        "bad-type": {**ok_media, "type": "audio"},
        "missing-type": _without(ok_media, "type"),
        "missing-url": _without(ok_media, "url"),
        "extra-field": {**ok_media, "width": 100},
        "long-alt-text": {**ok_media, "alt_text": "a" * 1001},
    }
    for name, item in bad_media.items():
        yield f"tweet.created-media-{name}", "tweet.created", {**tweet, "media": [item]}
    yield "tweet.created-5-media", "tweet.created", {**tweet, "media": [ok_media] * 5}
    yield "tweet.created-media-not-array", "tweet.created", {**tweet, "media": ok_media}
    yield "tweet.created-empty-text", "tweet.created", {**tweet, "text": ""}
    yield "tweet.created-text-over-1120", "tweet.created", {**tweet, "text": "a" * 1121}
    yield "tweet.created-author_id", "tweet.created", {**tweet, "author_id": "1001"}

    user = VALID["user.updated"]
    yield "user.updated-empty", "user.updated", {}
    yield "user.updated-handle", "user.updated", {"handle": "ada2"}
    yield "user.updated-protected-string", "user.updated", {**user, "protected": "yes"}
    yield "user.updated-empty-display-name", "user.updated", {**user, "display_name": ""}
    yield "user.updated-long-display-name", "user.updated", {**user, "display_name": "a" * 51}
    yield "user.updated-long-bio", "user.updated", {**user, "bio": "a" * 161}
    yield "user.updated-region-lowercase", "user.updated", {**user, "region": "gb"}
    yield "user.updated-region-3-letters", "user.updated", {**user, "region": "GBR"}


BAD = list(_bad_cases())


@pytest.mark.parametrize("event_type, data", [(t, d) for _, t, d in BAD], ids=[n for n, _, _ in BAD])
def test_bad_data_is_a_schema_violation(event_type, data):
    with pytest.raises(InvalidEvent) as info:
        decode(event_type, copy.deepcopy(data))
    assert info.value.reason == Reason.SCHEMA_VIOLATION


def test_tweet_media_limits_are_inclusive():
    tweet = VALID["tweet.created"]
    item = {"url": "https://x.example/" + "a" * (2048 - len("https://x.example/")), "type": "gif",
            "alt_text": "a" * 1000}
    assert decode("tweet.created", {**tweet, "media": [item] * 4}).data["media"][0] == item
