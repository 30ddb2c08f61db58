"""Running the faust worker from `starling worker`."""

from __future__ import annotations

import faust

from agents.app import build_app
from pipeline.settings import Settings
from pipeline.topology import load_topology


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    app, _rt = build_app(settings, load_topology(settings.topology_path))
    worker = faust.Worker(app, loglevel=loglevel)
    worker.execute_from_commandline()
