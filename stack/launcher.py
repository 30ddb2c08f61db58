"""up / down / status / logs over a list of services, with a bound on every wait and a progress display."""

from __future__ import annotations

import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TextIO

from stack import process
from stack.errors import StackError
from stack.services import Service


PORT_GRACE_S = 2.0


@dataclass(frozen=True)
class Status:
    name: str
    state: str  # "up", "starting", "down"
    pid: int | None
    rss_mib: float | None
    detail: str


def status(services: list[Service]) -> list[Status]:
    with ThreadPoolExecutor(max_workers=len(services) or 1) as pool:
        return list(pool.map(_status_one, services))


def _status_one(svc: Service) -> Status:
    pid = process.read_pid(svc.pid_file)
    if pid is None or not process.is_running(pid, svc.marker):
        if pid is not None:
            detail = f"process {pid} is gone (see `starling stack logs {svc.name}`)"
        else:
            taken = [p for p in svc.ports if process.port_in_use(p)]
            detail = f"port {taken[0]} answers, but not from a process this stack started" if taken else ""
        return Status(svc.name, "down", None, None, detail)
    detail = svc.probe()
    rss = process.rss_mib(pid)
    if detail is None:
        return Status(svc.name, "starting", pid, rss, "process alive, not answering requests yet")
    return Status(svc.name, "up", pid, rss, detail)


def up(services: list[Service], out: TextIO | None = None) -> dict[str, float]:
    """Start what is not running, then wait until every service answers. Returns seconds per service."""
    out = out or sys.stderr
    t0 = time.monotonic()
    to_start: list[Service] = []
    for svc in services:
        pid = process.read_pid(svc.pid_file)
        if pid is not None and process.is_running(pid, svc.marker):
            out.write(f"{svc.name}: already running (pid {pid})\n")
            continue
        for port in svc.ports:
            # A server killed a moment ago may hold its port briefly while the kernel closes it.
            if process.port_in_use(port) and not _port_frees(port, within_s=PORT_GRACE_S):
                raise StackError(
                    f"port {port} needed by {svc.name} is taken by another process; "
                    f"stop it or choose another port (see README, 'Configuration')"
                )
        to_start.append(svc)

    with ThreadPoolExecutor(max_workers=len(to_start) or 1) as pool:
        # Resolving the classpaths (Maven) is the slow part of a cold start: do both at once.
        # Each service starts as soon as its own preparation is done (Redis needs no download).
        prepared = {pool.submit(svc.prepare): svc for svc in to_start}
        for fut in as_completed(prepared):
            svc = prepared[fut]
            argv = _result(fut, svc)
            pid = process.spawn(argv, svc.log, svc.pid_file, env=svc.env)
            out.write(f"{svc.name}: started (pid {pid}), log {svc.log}\n")
    return wait_ready(services, out, t0)


def _port_frees(port: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if not process.port_in_use(port):
            return True
    return False


def _result(fut: Future[list[str]], svc: Service) -> list[str]:
    try:
        return fut.result()
    except StackError:
        raise
    except Exception as exc:  # noqa: BLE001 - turn any preparation failure into a clear message
        raise StackError(f"preparing {svc.name} failed: {exc}") from exc


def wait_ready(services: list[Service], out: TextIO, t0: float | None = None) -> dict[str, float]:
    t0 = time.monotonic() if t0 is None else t0
    ready: dict[str, float] = {}
    details: dict[str, str] = {}
    tty = out.isatty()
    last_line = 0.0
    with ThreadPoolExecutor(max_workers=len(services) or 1) as pool:
        while len(ready) < len(services):
            pending = [s for s in services if s.name not in ready]
            probes = {s.name: pool.submit(_timed, s) for s in pending}
            for svc in pending:
                detail, answered_at = probes[svc.name].result()
                elapsed = answered_at - t0
                if detail is not None:
                    ready[svc.name] = elapsed
                    details[svc.name] = detail
                    continue
                pid = process.read_pid(svc.pid_file)
                # Alive is enough while starting (the launcher wrote this pid a moment ago): Redis
                # rewrites its process title, and its command line can lack the marker for an instant.
                if pid is None or not process.alive(pid):
                    if pid is not None:
                        process.reap(pid)
                    raise StackError(
                        f"{svc.name} exited while starting; last lines of {svc.log}:\n"
                        + process.tail(svc.log, 25)
                    )
                if elapsed > svc.ready_timeout_s:
                    raise StackError(
                        f"{svc.name} did not answer within {svc.ready_timeout_s:.0f}s; "
                        f"last lines of {svc.log}:\n" + process.tail(svc.log, 25)
                    )
            now = time.monotonic()
            line = "  ".join(
                f"{s.name} {'up ' + format(ready[s.name], '.1f') + 's' if s.name in ready else 'waiting'}"
                for s in services
            )
            if tty:
                out.write(f"\r[{now - t0:5.1f}s] {line}   ")
            elif now - last_line >= 5 or len(ready) == len(services):
                out.write(f"[{now - t0:5.1f}s] {line}\n")
                last_line = now
            out.flush()
            if len(ready) < len(services):
                time.sleep(0.5)
    if tty:
        out.write("\n")
    for svc in services:
        out.write(f"{svc.name}: up after {ready[svc.name]:.1f}s ({details[svc.name]})\n")
    return ready


def _timed(svc: Service) -> tuple[str | None, float]:
    detail = svc.probe()
    return detail, time.monotonic()


def down(services: list[Service], out: TextIO | None = None) -> None:
    out = out or sys.stderr
    for svc in reversed(services):
        pid = process.read_pid(svc.pid_file)
        if pid is None or not process.is_running(pid, svc.marker):
            out.write(f"{svc.name}: not running\n")
        else:
            out.write(f"{svc.name}: stopping (pid {pid})...\n")
            out.flush()
            killed = process.stop(pid, svc.marker, svc.stop_grace_s)
            out.write(f"{svc.name}: {'killed after ' + str(svc.stop_grace_s) + 's' if killed else 'stopped'}\n")
        svc.pid_file.unlink(missing_ok=True)
