"""Settings: defaults, parsing, and failing fast with the variable's name."""

import pytest

from pipeline.errors import SettingsError
from pipeline.settings import Settings


def test_defaults_point_at_the_local_stack():
    s = Settings.from_env({})
    assert (s.kafka_bootstrap, s.cassandra_port, s.redis_url) == (
        "127.0.0.1:9092", 9042, "redis://127.0.0.1:6379/0")
    assert s.topology_path.name == "topology.yaml" and s.topology_path.is_file()


def test_values_come_from_the_environment():
    s = Settings.from_env({
        "STARLING_KAFKA_BOOTSTRAP": "k1:19092,k2:19092", "STARLING_CASSANDRA_HOSTS": "c1, c2",
        "STARLING_API_PORT": "9000", "STARLING_TOPIC_PREFIX": "t1.", "STARLING_KEYSPACE": "Other_KS",
        "STARLING_REDIS_URL": "redis://r:6380/3",
    })
    assert s.cassandra_hosts == ("c1", "c2")
    assert s.api_port == 9000 and s.kafka_port == 19092 and s.redis_port == 6380
    assert s.topic("ingest.tweets") == "t1.ingest.tweets"
    assert s.keyspace == "other_ks"


@pytest.mark.parametrize("variable, value", [
    ("STARLING_API_PORT", "eighty"),
    ("STARLING_API_PORT", "70000"),
    ("STARLING_KAFKA_BOOTSTRAP", "no-port"),
    ("STARLING_KEYSPACE", "bad-name"),
    ("STARLING_REDIS_URL", "http://x"),
    ("STARLING_WORKER_ID", "1024"),
    ("STARLING_API_PROCESSES", "0"),
    ("STARLING_API_PROCESSES", "two"),
    ("STARLING_TOPIC_PREFIX", "sp ace"),
    ("STARLING_TOPOLOGY", "/nonexistent/topology.yaml"),
])
def test_malformed_values_fail_naming_the_variable(variable, value):
    with pytest.raises(SettingsError) as info:
        Settings.from_env({variable: value})
    assert info.value.variable == variable
    assert variable in str(info.value)


@pytest.mark.parametrize("secret, ok", [(None, False), ("short", False), ("x" * 31, False), ("x" * 32, True)])
def test_jwt_secret_must_be_at_least_32_bytes(secret, ok):
    env = {} if secret is None else {"STARLING_JWT_SECRET": secret}
    s = Settings.from_env(env)
    if ok:
        assert s.require_jwt_secret() == secret.encode()
    else:
        with pytest.raises(SettingsError, match="STARLING_JWT_SECRET"):
            s.require_jwt_secret()


def test_secret_is_not_in_the_repr():
    assert "hunter2" not in repr(Settings.from_env({"STARLING_JWT_SECRET": "hunter2" * 8}))
