"""Running the faust worker from `starling worker`."""

from __future__ import annotations

import asyncio
import logging

import faust
import uvloop

from agents import moderation
from agents.app import build_app
from agents.loop_lag import LoopLag
from pipeline.settings import Settings
from pipeline.topology import load_topology
from starling import heap

log = logging.getLogger("starling.heap")
loop_log = logging.getLogger("starling.loop")


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    # uvloop for every loop the worker makes: the main one and the consumer thread's.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    heap.tune()
    collections = heap.watch()
    moderation.preload()
    app, _rt = build_app(settings, load_topology(settings.topology_path))

    lag = LoopLag()

    @app.task
    async def beat() -> None:
        await lag.run()

    @app.timer(interval=heap.REPORT_EVERY_S)
    async def report_collections() -> None:
        log.info("gc over the last %.0f s: %s", heap.REPORT_EVERY_S, collections.take())
        loop_log.info("event loop over the last %.0f s: %s", heap.REPORT_EVERY_S, lag.take())

    # What is alive now (modules, compiled schemas, the model) stays for the worker's life.
    heap.freeze_startup()
    worker = faust.Worker(app, loglevel=loglevel)
    worker.execute_from_commandline()
