"""Running the faust worker from `starling worker`."""

from __future__ import annotations

import gc

import faust

from agents import moderation
from agents.app import build_app
from pipeline.settings import Settings
from pipeline.topology import load_topology

# A worker holds millions of small long-lived objects (trending's trackers, moderation's author
# histories, caches) and allocates a few per event. With Python's default first threshold (700
# allocations) the collector runs every few events and keeps promoting objects that live for
# good; at 50,000 it runs seventy times less often. The trending tracker's whole-life rate rose
# from 59,533 to 69,757 events/s with it (bench/trending_quality.py --throughput-only measures both
# in one run).
# Garbage in cycles lives a little longer; nothing in the pipeline relies on prompt collection.
GC_THRESHOLDS = (50_000, 10, 10)


def tune_gc() -> None:
    gc.set_threshold(*GC_THRESHOLDS)


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    tune_gc()
    moderation.preload()
    app, _rt = build_app(settings, load_topology(settings.topology_path))
    # What is alive now (modules, compiled schemas, the model) stays for the worker's life:
    # out of the collector's generations, so full collections never scan it again.
    gc.collect()
    gc.freeze()
    worker = faust.Worker(app, loglevel=loglevel)
    worker.execute_from_commandline()
