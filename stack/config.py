"""Launcher configuration: where the stack keeps its state, which ports and how much memory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import SettingsError
from pipeline.settings import Settings

# Memory plan for one 2-core / 24 GiB machine running Kafka, Cassandra, Redis, the workers, the
# API and the test suite together (measured RSS is in docs/ARCHITECTURE.md):
#   Kafka heap 512 MiB (RSS ~0.7 GiB): one broker, a handful of partitions, small cleaner buffer.
#   Cassandra heap 1 GiB (RSS ~1.6 GiB incl. off-heap chunk cache, netty, metaspace).
#   Redis capped at 2 GiB, evicting least-recently-used keys: it only holds rebuildable views.
# That leaves >15 GiB for Python processes and page cache; CPU, not memory, is the constraint.
DEFAULT_KAFKA_HEAP = "512m"
DEFAULT_CASSANDRA_HEAP = "1g"
DEFAULT_REDIS_MAXMEMORY = "2gb"


@dataclass(frozen=True)
class StackConfig:
    state: Path
    kafka_port: int
    kafka_controller_port: int
    cassandra_port: int
    cassandra_storage_port: int
    redis_port: int
    kafka_heap: str
    cassandra_heap: str
    redis_maxmemory: str
    env: Mapping[str, str]

    @classmethod
    def from_settings(cls, settings: Settings, env: Mapping[str, str]) -> StackConfig:
        return cls(
            state=settings.state_dir.resolve(),
            kafka_port=settings.kafka_port,
            kafka_controller_port=_int(env, "STARLING_KAFKA_CONTROLLER_PORT", 9093),
            cassandra_port=settings.cassandra_port,
            cassandra_storage_port=_int(env, "STARLING_CASSANDRA_STORAGE_PORT", 7000),
            redis_port=settings.redis_port,
            kafka_heap=_heap(env, "STARLING_KAFKA_HEAP", DEFAULT_KAFKA_HEAP),
            cassandra_heap=_heap(env, "STARLING_CASSANDRA_HEAP", DEFAULT_CASSANDRA_HEAP),
            redis_maxmemory=env.get("STARLING_REDIS_MAXMEMORY", DEFAULT_REDIS_MAXMEMORY),
            env=env,
        )

    def lib(self, name: str) -> Path:
        return self.state / "lib" / name

    def conf(self, name: str) -> Path:
        return self.state / "conf" / name

    def data(self, name: str) -> Path:
        return self.state / "data" / name

    def log(self, name: str) -> Path:
        return self.state / "logs" / f"{name}.log"

    def pid_file(self, name: str) -> Path:
        return self.state / "run" / f"{name}.pid"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(name, f"has a malformed value {raw!r}: expected an integer") from None


def _heap(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name, default).lower()
    if not raw[:-1].isdigit() or raw[-1] not in "mg":
        raise SettingsError(name, f"has a malformed value {raw!r}: expected e.g. 512m or 1g")
    return raw
