"""One settings object, built once from the environment and passed down (DESIGN.md decision 8)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

from pipeline.errors import SettingsError

T = TypeVar("T")

# HS256 needs a key at least as long as its hash (RFC 7518 section 3.2): 32 bytes.
MIN_JWT_SECRET_BYTES = 32


def project_root() -> Path:
    """The checkout this code runs from (topology.yaml lives there)."""
    return Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Where things are. What the pipeline does is in topology.yaml."""

    kafka_bootstrap: str = "127.0.0.1:9092"
    cassandra_hosts: tuple[str, ...] = ("127.0.0.1",)
    cassandra_port: int = 9042
    keyspace: str = "starling"
    redis_url: str = "redis://127.0.0.1:6379/0"
    topic_prefix: str = ""
    app_id: str = "starling"
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_processes: int = 2  # the read path is CPU-bound in the API (bench/fanout.py --api-processes)
    worker_id: int = 0
    jwt_secret: str | None = field(default=None, repr=False)
    jwt_issuer: str = "starling"
    jwt_audience: str = "starling-api"
    topology_path: Path = field(default_factory=lambda: project_root() / "topology.yaml")
    state_dir: Path = field(default_factory=lambda: project_root() / ".state")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        d = cls()
        return cls(
            kafka_bootstrap=_get(env, "STARLING_KAFKA_BOOTSTRAP", d.kafka_bootstrap, _host_ports),
            cassandra_hosts=_get(env, "STARLING_CASSANDRA_HOSTS", d.cassandra_hosts, _hosts),
            cassandra_port=_get(env, "STARLING_CASSANDRA_PORT", d.cassandra_port, _port),
            keyspace=_get(env, "STARLING_KEYSPACE", d.keyspace, _identifier),
            redis_url=_get(env, "STARLING_REDIS_URL", d.redis_url, _redis_url),
            topic_prefix=_get(env, "STARLING_TOPIC_PREFIX", d.topic_prefix, _topic_prefix),
            app_id=_get(env, "STARLING_APP_ID", d.app_id, _topic_prefix),
            api_host=_get(env, "STARLING_API_HOST", d.api_host, str),
            api_port=_get(env, "STARLING_API_PORT", d.api_port, _port),
            api_processes=_get(env, "STARLING_API_PROCESSES", d.api_processes, _api_processes),
            worker_id=_get(env, "STARLING_WORKER_ID", d.worker_id, _worker_id),
            jwt_secret=env.get("STARLING_JWT_SECRET") or None,
            jwt_issuer=_get(env, "STARLING_JWT_ISSUER", d.jwt_issuer, str),
            jwt_audience=_get(env, "STARLING_JWT_AUDIENCE", d.jwt_audience, str),
            topology_path=_get(env, "STARLING_TOPOLOGY", d.topology_path, _existing_file),
            state_dir=_get(env, "STARLING_STATE_DIR", d.state_dir, Path),
        )

    @property
    def kafka_port(self) -> int:
        return int(self.kafka_bootstrap.split(",")[0].rsplit(":", 1)[1])

    @property
    def redis_port(self) -> int:
        tail = self.redis_url.split("://", 1)[1].split("/", 1)[0]
        return int(tail.rsplit(":", 1)[1]) if ":" in tail else 6379

    def topic(self, name: str) -> str:
        """The Kafka name of a topology topic (the prefix isolates test runs)."""
        return f"{self.topic_prefix}{name}"

    def require_jwt_secret(self) -> bytes:
        """The signing secret; a missing or short one stops the service at start-up."""
        if not self.jwt_secret:
            raise SettingsError("STARLING_JWT_SECRET", "is required (at least 32 random bytes)")
        raw = self.jwt_secret.encode()
        if len(raw) < MIN_JWT_SECRET_BYTES:
            raise SettingsError(
                "STARLING_JWT_SECRET",
                f"is {len(raw)} bytes; HS256 needs at least {MIN_JWT_SECRET_BYTES}",
            )
        return raw


def _get(env: Mapping[str, str], name: str, default: T, parse: Callable[[str], T]) -> T:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw.strip())
    except (ValueError, TypeError) as exc:
        raise SettingsError(name, f"has a malformed value {raw!r}: {exc}") from None


def _port(raw: str) -> int:
    port = int(raw)
    if not 0 < port < 65536:
        raise ValueError("not a TCP port")
    return port


def _host_ports(raw: str) -> str:
    for part in raw.split(","):
        host, sep, port = part.rpartition(":")
        if not sep or not host:
            raise ValueError("expected host:port[,host:port...]")
        _port(port)
    return raw


def _hosts(raw: str) -> tuple[str, ...]:
    hosts = tuple(h.strip() for h in raw.split(",") if h.strip())
    if not hosts:
        raise ValueError("expected at least one host")
    return hosts


def _identifier(raw: str) -> str:
    if not raw.replace("_", "a").isalnum() or not raw[0].isalpha() or len(raw) > 48:
        raise ValueError("expected a CQL identifier: a letter, then letters, digits or _")
    return raw.lower()


def _redis_url(raw: str) -> str:
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("expected redis://host:port/db")
    return raw


def _topic_prefix(raw: str) -> str:
    if any(not (c.isalnum() or c in "._-") for c in raw):
        raise ValueError("only letters, digits, '.', '_' and '-' are allowed")
    return raw


def _worker_id(raw: str) -> int:
    value = int(raw)
    if not 0 <= value < 1024:  # 10 worker bits in the snowflake layout
        raise ValueError("must be in 0..1023")
    return value


def _api_processes(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 64:
        raise ValueError("must be in 1..64")
    return value


def _existing_file(raw: str) -> Path:
    path = Path(raw)
    if not path.is_file():
        raise ValueError("no such file")
    return path
