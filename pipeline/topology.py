"""topology.yaml loaded into typed, cross-checked specs: the one source of topics and tunables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import TopologyError
from pipeline.fanout import Policy
from pipeline.moderation import ModerationConfig
from pipeline.trending import TrendingConfig


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    key: str
    retention_ms: int
    cleanup: str
    events: tuple[str, ...]
    # Event types re-produced here, unchanged, by a stage between the ingest topic and its readers
    # (tweets.moderated: what the moderation agent lets through). Their home topic stays the one
    # listing them under `events`, where producers send them.
    forwards: tuple[str, ...] = ()

    @property
    def accepted(self) -> frozenset[str]:
        """Every event type a reader of this topic may meet."""
        return frozenset(self.events) | frozenset(self.forwards)

    @property
    def internal(self) -> bool:
        """Written only by agents, after the checks at the ingest topic: nothing to look up again."""
        return bool(self.forwards)


@dataclass(frozen=True)
class AgentSpec:
    name: str
    consumes: str
    writes: tuple[str, ...]
    # Batches processed at once, on disjoint partitions (agents/runtime.run_by_partition).
    batches_in_flight: int = 1


@dataclass(frozen=True)
class Tunables:
    timeline_cap: int
    follower_page_size: int
    batch_max: int
    # Bytes of records per batch in agents that run several batch loops (runtime.run_by_partition).
    batch_max_bytes: int
    batch_within_s: float
    max_event_bytes: int
    rebuild_per_author: int
    retry_delays_s: tuple[float, ...]
    fanout: Policy
    # Follower ids the fan-out worker keeps in memory (pipeline/fanout.FollowerLists), 8 bytes each.
    follower_cache_ids: int = 10_000_000
    trending: TrendingConfig = field(default_factory=TrendingConfig)
    # How often the trending agent ranks its partitions and publishes a snapshot.
    trending_publish_s: float = 5.0
    moderation: ModerationConfig = field(default_factory=ModerationConfig)
    # How often each agent logs its batches' figures (agents/batch_stats.py).
    batch_stats_interval_s: float = 10.0
    # Longest a worker's fetch waits at the broker for records (adapters/faust_transport.py).
    fetch_max_wait_ms: int = 100


@dataclass(frozen=True)
class RateLimit:
    per_user: int
    per_ip: int


@dataclass(frozen=True)
class ApiPolicy:
    window_s: int
    rate_limits: dict[str, RateLimit]
    idempotency_ttl_s: int
    produce_timeout_ms: int
    produce_linger_ms: float


@dataclass(frozen=True)
class Topology:
    topics: dict[str, TopicSpec]
    agents: dict[str, AgentSpec]
    tunables: Tunables
    api: ApiPolicy

    def topic_for_event(self, event_type: str) -> TopicSpec:
        for spec in self.topics.values():
            if event_type in spec.events:
                return spec
        raise TopologyError(f"no topic carries event type {event_type!r}")

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(t for spec in self.topics.values() for t in spec.events)


def load_topology(path: Path) -> Topology:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TopologyError(f"cannot read {path}: {exc}") from None
    return parse_topology(raw)


def with_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of a raw topology with dotted paths replaced, e.g. {"api.produce_timeout_ms": 1500}
    (tests and benchmarks run with their own limits and bands)."""
    import copy

    out = copy.deepcopy(raw)
    for dotted, value in overrides.items():
        node = out
        *head, last = dotted.split(".")
        for part in head:
            node = node[part]
        node[last] = value
    return out


def parse_topology(raw: Any) -> Topology:
    if not isinstance(raw, dict) or raw.get("version") != 1:
        raise TopologyError("topology must be a mapping with version: 1")
    topics = {name: _topic(name, spec) for name, spec in _mapping(raw, "topics").items()}
    agents = {name: _agent(name, spec) for name, spec in _mapping(raw, "agents").items()}
    readers: dict[str, str] = {}
    for agent in agents.values():
        if agent.consumes not in topics:
            raise TopologyError(f"agent {agent.name} consumes unknown topic {agent.consumes}")
        # One reader per topic in a worker: two agents on one topic each hold every record, and a
        # rebalance waited 60 s for one of them that was never acknowledged (docs/ARCHITECTURE.md).
        if agent.consumes in readers:
            raise TopologyError(f"agents {readers[agent.consumes]} and {agent.name} both consume {agent.consumes}")
        readers[agent.consumes] = agent.name
    seen: dict[str, str] = {}
    for topic in topics.values():
        for event_type in topic.events:
            if event_type in seen:
                raise TopologyError(f"{event_type} is on both {seen[event_type]} and {topic.name}")
            seen[event_type] = topic.name
    for topic in topics.values():
        for event_type in topic.forwards:
            if event_type not in seen:
                raise TopologyError(f"topic {topic.name} forwards {event_type}, which no topic carries")
    t = _mapping(raw, "tunables")
    try:
        tunables = Tunables(
            timeline_cap=_positive_int(t, "timeline_cap"),
            follower_page_size=_positive_int(t, "follower_page_size"),
            batch_max=_positive_int(t, "batch_max"),
            batch_max_bytes=_positive_int(t, "batch_max_bytes") if "batch_max_bytes" in t else 4_194_304,
            batch_within_s=float(t["batch_within_s"]),
            max_event_bytes=_positive_int(t, "max_event_bytes"),
            rebuild_per_author=_positive_int(t, "rebuild_per_author"),
            retry_delays_s=_delays(t["retry_delays_s"]),
            fanout=_fanout(_mapping(t, "fanout")),
            follower_cache_ids=_positive_int(t, "follower_cache_ids") if "follower_cache_ids" in t else 10_000_000,
            trending=TrendingConfig.from_mapping(t.get("trending", {})),
            trending_publish_s=float(t.get("trending_publish_s", 5.0)),
            moderation=ModerationConfig.from_mapping(t.get("moderation", {})),
            batch_stats_interval_s=float(t.get("batch_stats_interval_s", 10.0)),
            fetch_max_wait_ms=_positive_int(t, "fetch_max_wait_ms") if "fetch_max_wait_ms" in t else 100,
        )
    except KeyError as exc:
        raise TopologyError(f"tunables.{exc.args[0]} is missing") from None
    return Topology(topics=topics, agents=agents, tunables=tunables, api=_api(_mapping(raw, "api")))


def _api(raw: dict[str, Any]) -> ApiPolicy:
    limits = dict(_mapping(raw, "rate_limits"))
    window = limits.pop("window_s", None)
    if not isinstance(window, int) or window <= 0:
        raise TopologyError("api.rate_limits.window_s must be a positive integer")
    parsed = {}
    for category, spec in limits.items():
        if not isinstance(spec, dict):
            raise TopologyError(f"api.rate_limits.{category} must be a mapping")
        try:
            parsed[category] = RateLimit(per_user=_positive_int(spec, "per_user"), per_ip=_positive_int(spec, "per_ip"))
        except KeyError as exc:
            raise TopologyError(f"api.rate_limits.{category}.{exc.args[0]} is missing") from None
    try:
        return ApiPolicy(window_s=window, rate_limits=parsed,
                         idempotency_ttl_s=_positive_int(raw, "idempotency_ttl_s"),
                         produce_timeout_ms=_positive_int(raw, "produce_timeout_ms"),
                         produce_linger_ms=float(raw["produce_linger_ms"]))
    except KeyError as exc:
        raise TopologyError(f"api.{exc.args[0]} is missing") from None


def _mapping(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise TopologyError(f"{key} must be a mapping")
    return value


def _fanout(raw: dict[str, Any]) -> Policy:
    try:
        policy = Policy(push_all_below=_positive_int(raw, "push_all_below"),
                        push_active_below=_positive_int(raw, "push_active_below"),
                        activity_window_s=_positive_int(raw, "activity_window_s"))
    except KeyError as exc:
        raise TopologyError(f"tunables.fanout.{exc.args[0]} is missing") from None
    if policy.push_active_below < policy.push_all_below:
        raise TopologyError("tunables.fanout: push_active_below must be >= push_all_below")
    return policy


def _delays(raw: Any) -> tuple[float, ...]:
    if not isinstance(raw, list) or not all(isinstance(d, (int, float)) and d > 0 for d in raw):
        raise TopologyError("tunables.retry_delays_s must be a list of positive numbers")
    return tuple(float(d) for d in raw)


def _positive_int(raw: dict[str, Any], key: str) -> int:
    value = raw[key]
    if not isinstance(value, int) or value <= 0:
        raise TopologyError(f"{key} must be a positive integer, got {value!r}")
    return value


def _topic(name: str, spec: Any) -> TopicSpec:
    if not isinstance(spec, dict):
        raise TopologyError(f"topic {name} must be a mapping")
    try:
        topic = TopicSpec(
            name=name,
            partitions=_positive_int(spec, "partitions"),
            key=str(spec["key"]),
            retention_ms=_positive_int(spec, "retention_ms"),
            cleanup=str(spec["cleanup"]),
            events=tuple(spec["events"]),
            forwards=tuple(spec.get("forwards", ())),
        )
    except KeyError as exc:
        raise TopologyError(f"topic {name} lacks {exc.args[0]}") from None
    if topic.cleanup not in ("delete", "compact"):
        raise TopologyError(f"topic {name}: cleanup must be delete or compact")
    return topic


# Agents whose state and ordering are per key of the topic they read (the author): they may run
# batches of disjoint partitions at once (agents/runtime.run_by_partition).
CONCURRENT_BATCHES_SAFE = ("moderation", "fanout")


def _agent(name: str, spec: Any) -> AgentSpec:
    if not isinstance(spec, dict) or "consumes" not in spec:
        raise TopologyError(f"agent {name} must name the topic it consumes")
    in_flight = spec.get("batches_in_flight", 1)
    if not isinstance(in_flight, int) or isinstance(in_flight, bool) or not 1 <= in_flight <= 8:
        raise TopologyError(f"agent {name}: batches_in_flight must be an integer from 1 to 8")
    if in_flight > 1 and name not in CONCURRENT_BATCHES_SAFE:
        raise TopologyError(f"agent {name}: batches_in_flight must be 1 (only {', '.join(CONCURRENT_BATCHES_SAFE)} "
                            "keep their state per key of their topic, which run_by_partition keeps in order)")
    return AgentSpec(name=name, consumes=str(spec["consumes"]), writes=tuple(spec.get("writes", ())),
                     batches_in_flight=in_flight)
