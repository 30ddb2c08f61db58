"""Running the API from `starling api`."""

from __future__ import annotations

import logging

import uvloop
from aiohttp import web

from api.app import create_app
from pipeline.settings import Settings


def run_api(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = create_app(settings)
    # uvloop: the API spends most of its CPU in the event loop and socket handling (cProfile).
    web.run_app(app, host=settings.api_host, port=settings.api_port, access_log=None, loop=uvloop.new_event_loop(),
                print=lambda msg: logging.getLogger("starling.api").info(msg))
