"""The running pipeline for e2e tests: worker and API processes on the test namespace."""

import os

import aiohttp
import pytest
import pytest_asyncio

from adapters.kafka import EventProducer
from pipeline.topology import load_topology
from stack import launcher
from starling import local


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def running(stack, test_env, redis_client):
    """Start `starling worker` and `starling api` as background processes; stop them after.
    (After redis_client, which empties the tests' Redis database: nothing of an earlier run, such
    as a trending checkpoint, is read as this run's.)"""
    apps = local.apps(stack, test_env)
    try:
        launcher.up(apps)
        yield stack
    finally:
        launcher.down(apps, out=open(os.devnull, "w"))


@pytest_asyncio.fixture(scope="session")
async def producer(running):
    p = EventProducer(running, load_topology(running.topology_path))
    yield p
    p.close()


@pytest_asyncio.fixture(scope="session")
async def http(running):
    async with aiohttp.ClientSession(base_url=f"http://{running.api_host}:{running.api_port}") as session:
        yield session
