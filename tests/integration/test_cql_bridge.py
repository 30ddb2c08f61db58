"""A finished Cassandra request is freed by reference counting, not left to the cyclic collector
(adapters/cql._result: the driver keeps a cancelled timer whose callback is the request itself)."""

import asyncio
import gc
import time
import weakref

import pytest

from adapters import cql


@pytest.fixture
def collector_off():
    was = gc.isenabled()
    gc.disable()
    yield
    if was:
        gc.enable()


async def _freed(ref: weakref.ref, timeout_s: float = 5) -> bool:
    """Whether the object dies within the bound with the collector off (the driver's I/O thread
    drops a cancelled timer the next time it services its timers)."""
    deadline = time.monotonic() + timeout_s
    while ref() is not None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return ref() is None


async def test_a_finished_request_is_freed_without_the_cyclic_collector(cass, collector_off):
    stmt = await cql.prepare(cass.session, "SELECT release_version FROM system.local")
    rf = cass.session.execute_async(stmt)
    rows = await cql._result(rf)
    assert rows and rows[0]["release_version"]
    ref = weakref.ref(rf)
    del rf
    assert await _freed(ref), "the request is still alive: something keeps it in a cycle"


async def test_a_bare_driver_request_is_kept_in_a_cycle(cass, collector_off):
    """What _result undoes: the same request awaited without it stays alive until a collection."""
    stmt = await cql.prepare(cass.session, "SELECT release_version FROM system.local")
    rf = cass.session.execute_async(stmt)
    await cql._bridge(rf)
    ref = weakref.ref(rf)
    del rf
    assert not await _freed(ref, timeout_s=1)
    gc.collect()
    assert ref() is None


async def test_a_lookup_of_more_keys_than_a_page_returns_every_row(cass):
    """The driver answers one page (5,000 rows) per request: a lookup of 6,000 users by id returns
    all 6,000, not the first page."""
    from pipeline.model import User

    base = 7_300_000_000 + int(time.time() * 1000) % 1_000_000 * 10_000
    users = [User(user_id=base + i, handle=f"page{base + i}", display_name="p", bio="", protected=False,
                  region="eu", created_at=1_700_000_000_000) for i in range(6000)]
    await cass.save_users((u, 1) for u in users)
    found = await cass.get_users(u.user_id for u in users)
    assert sorted(found) == [u.user_id for u in users]
    assert await cass.existing_users(u.user_id for u in users) == {u.user_id for u in users}


async def test_a_write_of_many_partitions_lands_every_row(cass):
    """Follows of 40 accounts (a partition each), several partitions to a request
    (cql.execute_grouped), and one account with more followers than a request holds: every row
    is there, in both tables."""
    from adapters.cql import PARTITION_BATCH_MAX

    assert cass.partitions_per_request > 1
    base = 7_400_000_000 + int(time.time() * 1000) % 1_000_000 * 10_000
    star, accounts = base, [base + 1 + i for i in range(40)]
    fans = [base + 1000 + i for i in range(PARTITION_BATCH_MAX * 2 + 50)]
    followers = {star: fans, **{a: fans[: 1 + i % 3] for a, i in zip(accounts, range(40))}}
    now = int(time.time() * 1000)
    await cass.apply_edges("follow", [(f, a, True, now) for a, fs in followers.items() for f in fs])
    found = await cass.followers_of([star, *accounts], 5000)
    assert {a: sorted(fs) for a, fs in found.items()} == {a: sorted(fs) for a, fs in followers.items()}
    assert set(await cass.following(fans[0])) == {star, *accounts}


async def test_pages_give_tuples_in_the_selected_order_with_the_tuples_profile(cass):
    """The follower-list read takes rows as tuples (cql.TUPLES); every other read keeps dicts."""
    base = 7_500_000_000 + int(time.time() * 1000) % 1_000_000 * 10_000
    await cass.apply_edges("follow", [(base + 1, base, True, int(time.time() * 1000))])
    stmt = await cql.prepare(cass.session, "SELECT user_id, follower_id FROM followers_by_user WHERE user_id IN ?")
    as_tuples = [row async for page in cql.pages(cass.session, stmt, ([base],), 10, profile=cql.TUPLES) for row in page]
    as_dicts = [row async for page in cql.pages(cass.session, stmt, ([base],), 10) for row in page]
    assert as_tuples == [(base, base + 1)]
    assert as_dicts == [{"user_id": base, "follower_id": base + 1}]
