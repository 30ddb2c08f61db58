"""Shared fixtures. Integration and e2e tests use a private namespace on the real local stack:
their own topic prefix, keyspace, Redis database and consumer group, created here and dropped after.
A service that does not answer is a failure, never a skip."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis  # noqa: F401 - the fixture's type
import yaml

from pipeline.settings import Settings

RUN = secrets.token_hex(3)
# Redis database for tests: apart from the demo's database 0, flushed at the start of a run.
TEST_REDIS_DB = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def test_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = Settings.from_env()
    host, port = base.redis_url.split("://", 1)[1].split("/", 1)[0], base.redis_port
    state = tmp_path_factory.mktemp("state")
    # Tests poll the API from one address; the limits themselves are tested with tight values
    # (tests/e2e/test_write_api.py), so the shared test API gets roomy ones.
    topology = yaml.safe_load(base.topology_path.read_text())
    for limit in topology["api"]["rate_limits"].values():
        if isinstance(limit, dict):
            limit.update(per_user=limit["per_user"] * 100, per_ip=limit["per_ip"] * 100)
    # Unknown references reach the dead-letter topic in seconds instead of minutes.
    topology["tunables"]["retry_delays_s"] = [0.5, 1]
    # Small bands so a handful of test users exercise all three fan-out modes.
    topology["tunables"]["fanout"].update(push_all_below=3, push_active_below=5)
    # Trending on a test's time scale: 1 s buckets, one 30 s window, no warm-up, published every
    # second; the scoring rules (min authors, per-author cap, min score) stay as configured.
    topology["tunables"]["trending"].update(
        bucket_s=1, warmup_s=0, detail_s=600, summary_s=600,
        windows={"30s": {"length_s": 30, "baseline_s": 600, "recent_s": 120, "half_life_s": 30}})
    topology["tunables"]["trending_publish_s"] = 1
    # Operator policy for the moderation tests (tests/e2e/test_moderation.py); the tuned model
    # thresholds and spam signals stay as configured.
    topology["tunables"]["moderation"].update(
        blocked_terms=["forbiddenword", "buy followers"], blocked_domains=["spam.example"],
        sensitive_terms=["spoilers"])
    (state / "topology.yaml").write_text(yaml.safe_dump(topology))
    return {
        **os.environ,
        "STARLING_TOPOLOGY": str(state / "topology.yaml"),
        "STARLING_TOPIC_PREFIX": f"t{RUN}.",
        "STARLING_KEYSPACE": f"t{RUN}",
        "STARLING_APP_ID": f"starling-t{RUN}",
        "STARLING_REDIS_URL": f"redis://{host.rsplit(':', 1)[0]}:{port}/{TEST_REDIS_DB}",
        "STARLING_API_PORT": str(free_port()),
        "STARLING_STATE_DIR": str(state),
        "STARLING_JWT_SECRET": secrets.token_urlsafe(48),
        # Two API processes share the port, as the local stack runs them: every e2e test goes
        # through either (rate limits, idempotency keys and caches must not depend on which).
        "STARLING_API_PROCESSES": "2",
    }


@pytest.fixture(scope="session")
def settings(test_env: dict[str, str]) -> Settings:
    return Settings.from_env(test_env)


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Iterator[Settings]:
    """The real Kafka, Cassandra and Redis answer, and the test namespace exists (then is dropped)."""
    from adapters import provision
    from stack import probes

    base = Settings.from_env()
    answers = {
        "kafka": probes.kafka(settings.kafka_bootstrap),
        "cassandra": probes.cassandra(settings.cassandra_hosts[0], settings.cassandra_port),
        "redis": probes.redis(base.redis_url),
    }
    down = [name for name, detail in answers.items() if detail is None]
    if down:
        pytest.fail(f"{', '.join(down)} not answering: start the stack with `starling stack up` "
                    "(the README's test command does this)", pytrace=False)
    provision.create_topics(settings)
    provision.apply_cql_schema(settings)
    yield settings
    if not os.environ.get("STARLING_TEST_KEEP_NAMESPACE"):
        provision.drop(settings)


@pytest_asyncio.fixture(scope="session")
async def redis_client(stack: Settings) -> AsyncIterator[aioredis.Redis]:
    from adapters.redis_store import connect

    client = connect(stack.redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest_asyncio.fixture(scope="session")
async def cass(stack: Settings):  # type: ignore[no-untyped-def]
    from adapters.cassandra_store import CassandraStore

    store = await CassandraStore.open(stack)
    yield store
    await store.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: every test runs against the real services."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nCI: {skipped} test(s) skipped; nothing may skip in CI", flush=True)
