"""Several API processes on one port (api/main.py): both serve, a signal stops them all cleanly,
and one dying takes the API down as a whole instead of leaving it at half capacity."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

BOUND_S = 60


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def listening_pids(port: int) -> set[int]:
    """Processes holding a listening socket on the port, from /proc (no lsof on the machine)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    pids = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    pids.add(int(proc.name))
        except (PermissionError, FileNotFoundError, ProcessLookupError):
            continue
    return pids


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + BOUND_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {BOUND_S} s: {what}")
        time.sleep(0.1)


@pytest.fixture
def api(test_env, tmp_path):
    port = free_port()
    env = {**test_env, "STARLING_API_PORT": str(port), "STARLING_API_PROCESSES": "2"}
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-m", "starling", "api"], env=env, start_new_session=True,
                             stdout=open(tmp_path / "api.log", "ab"), stderr=subprocess.STDOUT)
        started.append(p)
        wait_for(lambda: len(listening_pids(port)) == 2 and healthy(port), "two API processes listening")
        return p

    yield start, port, tmp_path / "api.log"
    for p in started:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def test_two_processes_serve_one_port_and_stop_on_sigterm(api):
    start, port, _log = api
    supervisor = start()
    servers = children(supervisor.pid)
    assert len(servers) == 2
    assert listening_pids(port) == set(servers)
    assert all(healthy(port) for _ in range(20))
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=BOUND_S) == 0
    wait_for(lambda: not listening_pids(port), "the port released")


def test_one_process_dying_stops_the_api(api):
    start, port, _log = api
    supervisor = start()
    first, second = children(supervisor.pid)
    os.kill(first, signal.SIGKILL)
    assert supervisor.wait(timeout=BOUND_S) == 1
    wait_for(lambda: not os.path.exists(f"/proc/{second}") or "Z" in Path(f"/proc/{second}/stat").read_text().split()[2],
             "the other API process gone")
    wait_for(lambda: not listening_pids(port), "the port released")


def test_a_signal_to_the_whole_group_stops_every_process_cleanly(api):
    """What `starling stack down` does: SIGTERM to the process group, so each server gets it twice
    (directly and passed on by the supervisor)."""
    start, port, log = api
    supervisor = start()
    servers = children(supervisor.pid)
    os.killpg(supervisor.pid, signal.SIGTERM)
    assert supervisor.wait(timeout=BOUND_S) == 0
    wait_for(lambda: not listening_pids(port), "the port released")
    text = log.read_text()
    assert "Traceback" not in text and "failed" not in text, text[-2000:]
    assert len(servers) == 2
