"""The launcher's lifecycle on a real server: up, up again, kill by hand, status, down, up.

Redis stands in for the JVMs here (same code path, seconds instead of a minute); the README's
test command itself starts Kafka and Cassandra through the same launcher before these tests run.
"""

import os
import signal
import socket
import time

import pytest

from pipeline.settings import Settings
from stack import launcher, process
from stack.config import StackConfig
from stack.errors import StackError
from stack.prereqs import find_java17, java_major
from stack.services import redis as redis_service
from tests.conftest import free_port


@pytest.fixture
def isolated_redis(tmp_path):
    port = free_port()
    settings = Settings.from_env({"STARLING_STATE_DIR": str(tmp_path),
                                  "STARLING_REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    cfg = StackConfig.from_settings(settings, {})
    svc = redis_service(cfg)
    yield svc
    launcher.down([svc], out=open(os.devnull, "w"))


def _status(svc):
    return launcher.status([svc])[0]


def test_up_twice_kill_status_down_up(isolated_redis, capsys):
    svc = isolated_redis
    assert _status(svc).state == "down"
    launcher.up([svc])
    first = _status(svc)
    assert first.state == "up" and first.detail.startswith("Redis 7")

    launcher.up([svc])  # idempotent: the same process keeps running
    assert _status(svc).pid == first.pid
    assert "already running" in capsys.readouterr().err

    os.kill(first.pid, signal.SIGKILL)
    # The signal is delivered asynchronously: poll (bounded) until the process is gone and reaped.
    deadline = time.monotonic() + 10
    while True:
        process.reap(first.pid)
        killed = _status(svc)
        if killed.state == "down" or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert killed.state == "down" and "gone" in killed.detail

    launcher.down([svc])
    assert not svc.pid_file.exists()
    launcher.up([svc])
    again = _status(svc)
    assert again.state == "up" and again.pid != first.pid

    launcher.down([svc])
    assert _status(svc).state == "down"
    assert not process.is_running(again.pid, svc.marker)


def test_a_taken_port_is_named(isolated_redis):
    svc = isolated_redis
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", svc.ports[0]))
        squatter.listen()
        with pytest.raises(StackError, match=f"port {svc.ports[0]} needed by redis is taken"):
            launcher.up([svc])
        assert "not from a process this stack started" in _status(svc).detail


def test_a_missing_jdk_is_named(tmp_path):
    with pytest.raises(StackError, match="not a JDK 17"):
        find_java17({"STARLING_JAVA17": str(tmp_path / "no-such-java")})


def test_jdk17_is_chosen_explicitly_even_beside_a_newer_jdk():
    java = find_java17({})
    assert java_major(java) == 17
