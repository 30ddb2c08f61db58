"""Running the API from `starling api`: one process, or several sharing the port.

With STARLING_API_PROCESSES=N > 1 this process forks N servers that bind the same port with
SO_REUSEPORT (the kernel spreads connections over them) and supervises them: a signal is passed
on, and if one server dies the others are stopped and the API exits non-zero, so a supervisor
(the launcher, systemd, Kubernetes) sees one failure instead of a half-capacity API. Everything an
API process shares with another lives in Redis, Cassandra or Kafka (rate limits, idempotency
keys, timelines); each has its own snowflake worker id, worker_id + i, so ids never collide.
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import logging
import os
import signal
import sys
import types

import uvloop
from aiohttp import web

from api.app import create_app
from pipeline.settings import Settings
from pipeline.snowflake import MAX_WORKER
from starling import heap

log = logging.getLogger("starling.api")
PR_SET_PDEATHSIG = 1  # linux/prctl.h: a signal for this process when its parent dies


def run_api(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    n = settings.api_processes
    if settings.worker_id + n - 1 > MAX_WORKER:
        raise SystemExit(f"STARLING_WORKER_ID {settings.worker_id} + {n} API processes exceeds worker id {MAX_WORKER}")
    if n == 1:
        serve(settings, reuse_port=False)
    else:
        sys.exit(supervise(settings, n))


def serve(settings: Settings, reuse_port: bool) -> None:
    # Python's default thresholds, not the worker's (starling/heap.py): a collection's pause grows
    # with the young generation, and a request waits out every pause. At 50,000 one young
    # collection stalled an API process for 20-54 ms of CPU; at the default 700 the longest took
    # 10 ms, and all of them 0.3% of its CPU (bench/fanout.py, 1,000 reads/s; two-thirds of those
    # young generations were the driver's request cycles, which adapters/cql._result now breaks).
    collections = heap.watch()
    app = create_app(settings)
    app.on_startup.append(_freeze_startup)  # after the clients (cleanup_ctx) are open

    async def report_gc(_app: web.Application) -> None:
        log.info("gc over this process's life (CPU ms): %s", collections.summary())

    app.on_shutdown.append(report_gc)
    # uvloop: the API spends most of its CPU in the event loop and socket handling (cProfile).
    loop = uvloop.new_event_loop()
    _stop_once_on(loop, signal.SIGINT, signal.SIGTERM)
    web.run_app(app, host=settings.api_host, port=settings.api_port, access_log=None, loop=loop,
                reuse_port=reuse_port, print=lambda msg: log.info(msg), handle_signals=False)


async def _freeze_startup(_app: web.Application) -> None:
    """The modules, the OpenAPI document and the clients live as long as the process
    (starling/heap.py). Without this, each full collection scanned them all again: 100-160 ms
    (wall time, bench/fanout.py at 1,000 reads/s), stalling every request the process held."""
    heap.freeze_startup()


def _stop_once_on(loop: asyncio.AbstractEventLoop, *signals: signal.Signals) -> None:
    """Shut down gracefully on the first of these signals and ignore any later one. A server under
    the supervisor gets SIGTERM twice (the launcher signals the whole process group and the
    supervisor passes it on); aiohttp's own handler raised again during the shutdown the first
    began, and the server exited with a traceback instead of cleanly."""
    def stop() -> None:
        for sig in signals:
            loop.add_signal_handler(sig, lambda: None)
        raise web.GracefulExit()

    for sig in signals:
        loop.add_signal_handler(sig, stop)


def supervise(settings: Settings, n: int) -> int:
    children: dict[int, int] = {}  # pid -> index
    supervisor = os.getpid()
    for i in range(n):
        pid = os.fork()
        if pid == 0:  # nothing but settings and logging exist yet: no loop, socket or thread
            _exit_with_parent()
            if os.getppid() != supervisor:  # it died before the request above took effect
                os._exit(1)
            code = 0
            try:
                serve(dataclasses.replace(settings, worker_id=settings.worker_id + i), reuse_port=True)
            except BaseException:  # noqa: BLE001 - reported, then the supervisor decides
                log.exception("API process %d failed", i)
                code = 1
            os._exit(code)
        children[pid] = i
    log.info("API: %d processes on port %d (pids %s)", n, settings.api_port, sorted(children))
    stopping = False

    def stop(signum: int, _frame: types.FrameType | None = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    while children:
        pid, raw = os.wait()
        i = children.pop(pid, -1)
        if i < 0:
            continue
        code = os.waitstatus_to_exitcode(raw)
        if not stopping:
            log.error("API process %d (pid %d) exited with %d: stopping the others", i, pid, code)
            status = 1
            stop(signal.SIGTERM)
    return status


def _exit_with_parent() -> None:
    """Ask Linux to SIGTERM this process when the supervisor dies, even by SIGKILL."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the process group signal of the launcher still reaches it
