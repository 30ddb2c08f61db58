"""cassandra-driver on asyncio: connect off the loop, and await ResponseFutures from the loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from typing import Any, TypeVar

from cassandra import ConsistencyLevel
from cassandra.cluster import Cluster, ExecutionProfile, EXEC_PROFILE_DEFAULT, ResponseFuture, Session
from cassandra.policies import RoundRobinPolicy
from cassandra.query import BatchStatement, BatchType, PreparedStatement, dict_factory, tuple_factory

from pipeline.settings import Settings

# The execution profile whose rows are tuples, for reads of many rows (follower lists): a dict per
# row was nearly half of the driver's CPU for them (0.85-0.88 us a row with dicts, 0.44-0.54 with
# tuples, reading ~300,000 follower rows in IN queries of 40 authors, 2 interleaved rounds each).
TUPLES = "tuples"


async def connect(settings: Settings, keyspace: str | None = None) -> tuple[Cluster, Session]:
    """Connect (blocking in the driver, so in a thread). One node locally: LOCAL_ONE is quorum."""
    def profile(row_factory: Callable[..., Any]) -> ExecutionProfile:
        return ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), consistency_level=ConsistencyLevel.LOCAL_QUORUM,
                                request_timeout=10, row_factory=row_factory)

    cluster = Cluster(
        list(settings.cassandra_hosts), port=settings.cassandra_port, protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile(dict_factory), TUPLES: profile(tuple_factory)}, connect_timeout=10,
    )
    session = await asyncio.to_thread(cluster.connect, keyspace)
    return cluster, session


def blocking_cluster(hosts: list[str], port: int, timeout_s: float = 10) -> Cluster:
    """A plain synchronous cluster handle for tools (provisioning, probes)."""
    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=60)
    return Cluster(hosts, port=port, protocol_version=5, connect_timeout=timeout_s,
                   control_connection_timeout=timeout_s, execution_profiles={EXEC_PROFILE_DEFAULT: profile})


async def prepare(session: Session, cql: str, idempotent: bool = True) -> PreparedStatement:
    stmt = await asyncio.to_thread(session.prepare, cql)
    # Upserts and deletes by natural key may be retried and speculated by the driver.
    stmt.is_idempotent = idempotent
    return stmt


def _bridge(rf: ResponseFuture) -> asyncio.Future[Any]:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()

    def ok(rows: Any) -> None:
        loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(rows))

    def err(exc: BaseException) -> None:
        loop.call_soon_threadsafe(lambda: fut.done() or fut.set_exception(exc))

    rf.add_callbacks(ok, err)
    return fut


async def _result(rf: ResponseFuture) -> Any:
    """A request's result (this page's rows), awaited on the loop.

    Then the request lets go of its timeout timer. The driver cancels the timer when the response
    comes but keeps it, and the timer's callback is the request's own method: a reference cycle,
    so every query left ~34 objects (the request, its statement and message, its query plan,
    locks, the callbacks) for the cyclic collector instead of freeing them by reference counting.
    In the worker (first threshold 50,000) that made young collections of 20-60 ms of CPU every
    second or two under load (starling/heap.py logs them); in an API process most of its young
    collections. The driver has cancelled the timer before it delivers the result; a failed or
    cancelled wait leaves it alone (the collector still frees that one)."""
    rows = await _bridge(rf)
    rf._timer = None  # noqa: SLF001 - cassandra-driver 3.30: ResponseFuture._start_timer/_cancel_timer
    return rows


async def execute(session: Session, stmt: Any, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    """Every row of the result, page after page. The driver hands over one page (its fetch size,
    5,000 rows) per request: a lookup of more keys than that (`WHERE id IN ?`, a fan-out batch's
    authors) once returned the first 5,000 rows and silently dropped the rest."""
    return [row async for page in pages(session, stmt, params) for row in page]


async def execute_many(session: Session, stmt: PreparedStatement, params: Sequence[Sequence[Any]],
                       concurrency: int = 64) -> None:
    """Run one prepared statement for many parameter rows, at most `concurrency` in flight."""
    sem = asyncio.Semaphore(concurrency)

    async def one(p: Sequence[Any]) -> None:
        async with sem:
            await _result(session.execute_async(stmt, p))

    await asyncio.gather(*(one(p) for p in params))


# Rows of one partition per UNLOGGED batch: a single-partition batch is applied as one mutation,
# so it is both cheaper for the server and one request for the driver's (Python) event path.
PARTITION_BATCH_MAX = 100
# Partitions on the same replicas per UNLOGGED batch where a write touches many
# (execute_grouped's partitions_per_request). Moderation's writes of 200 tweets (a tweet's row and
# verdict, its author's index and history rows: two partitions a tweet), interleaved rounds on one
# node (bench/cassandra_writes.py): 1 partition a request 1,670 tweets/s, Cassandra 355 us and the
# client 451 us of CPU a tweet; 4: 2,710/s, 328 and 249 us; 8: 3,585/s, 228 and 180 us; 10:
# 3,010/s, 303 and 185 us. Eight tweets' rows are ~3 KiB, under Cassandra's batch size warning
# (5 KiB) and its warning for unlogged batches across more than 10 partitions; above it, each
# batch logs a warning on the server.
PARTITIONS_PER_REQUEST = 8
# And no more than this many bytes of values (estimated, `value_bytes`) in a request of several
# partitions: Cassandra warns of every batch over 5 KiB (batch_size_warn_threshold), and eight
# partitions of moderation's writes (four tweets) reached 5,136 bytes in bench/fanout.py, more
# with longer texts. value_bytes estimates 802 bytes for one of those tweets, against the ~1,284
# Cassandra counts (cell timestamps, map entries): 3,072 estimated keeps a request near 4.9 KiB.
# A single partition over it still goes alone. bench/cassandra_writes.py (a score for every signal,
# 4 rounds): 8 partitions uncapped 1,945 tweets/s, capped at 3,200 or 3,072 bytes 1,843 and 2,054,
# none of them warned; 10 partitions uncapped warned of all 1,600 batches and ran at 0.63x of 8.
REQUEST_BYTES_MAX = 3072


async def execute_by_partition(session: Session, stmt: PreparedStatement, params: Sequence[Sequence[Any]],
                               concurrency: int = 64, key_index: int = 0, partitions_per_request: int = 1) -> None:
    """Like execute_many, grouping rows whose partition key (parameter `key_index`) is equal into
    UNLOGGED batches (each statement keeps its own USING TIMESTAMP): one partition's, or up to
    `partitions_per_request` partitions on the same replicas (execute_grouped)."""
    await execute_grouped(session, [(p[key_index], stmt, p) for p in params], concurrency, partitions_per_request)


async def execute_grouped(session: Session, items: Sequence[tuple[Hashable, PreparedStatement, Sequence[Any]]],
                          concurrency: int = 64, partitions_per_request: int = 1) -> None:
    """Run (group, statement, parameters) items, those of one group in UNLOGGED batches. A group is
    one partition key value, possibly of several tables (a tweet's row and its verdict): the same
    replica applies them, and the driver handles one request instead of several, which is most of
    its cost per statement (bench/moderation_pipeline.py).

    With `partitions_per_request` > 1, up to that many groups whose partitions live on the same
    replicas share one UNLOGGED batch (grouped by replica set, as the Spark Cassandra connector's
    batch.grouping.key=replica_set does): still applied by the replicas that own them, with one
    request's cost for the driver and the coordinator instead of one each (bench/cassandra_writes.py)."""
    groups: dict[Hashable, list[tuple[PreparedStatement, Sequence[Any]]]] = {}
    for key, stmt, params in items:
        groups.setdefault(key, []).append((stmt, params))
    metadata = session.cluster.metadata
    # On one node every partition has the same replica: finding a group's means binding its first
    # statement (serializing every value, to be done again for the request) and a token lookup,
    # 4-6 us for a one-column statement, ~5% of a worker's samples at 700 tweets/s (py-spy).
    single_node = len(metadata.all_hosts()) == 1

    def replicas(rows: list[tuple[PreparedStatement, Sequence[Any]]]) -> frozenset[Any]:
        if single_node:
            return frozenset()
        stmt, params = rows[0]
        return frozenset(metadata.get_replicas(stmt.keyspace, stmt.bind(params).routing_key))

    chunks = request_chunks(list(groups.values()), replicas, partitions_per_request,
                            size=lambda row: value_bytes(row[1]), most_bytes=REQUEST_BYTES_MAX)
    requests: list[Any] = []
    for chunk in chunks:
        if len(chunk) == 1:
            requests.append(chunk[0][0].bind(chunk[0][1]))
            continue
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        batch.is_idempotent = all(stmt.is_idempotent for stmt, _ in chunk)
        for stmt, params in chunk:
            batch.add(stmt, params)
        requests.append(batch)
    sem = asyncio.Semaphore(concurrency)

    async def one(request: Any) -> None:
        async with sem:
            await _result(session.execute_async(request))

    await asyncio.gather(*(one(r) for r in requests))


Row = TypeVar("Row")


def request_chunks(groups: list[list[Row]], replicas: Callable[[list[Row]], Hashable] | None,
                   partitions_per_request: int, size: Callable[[Row], int] | None = None,
                   most_bytes: int | None = None) -> list[list[Row]]:
    """The requests for groups of rows (one group a partition): a group's rows stay together and
    in order, PARTITION_BATCH_MAX rows at most a request (a larger group fills requests of its
    own); with `replicas`, up to `partitions_per_request` groups of equal replicas share one, and
    with `size` and `most_bytes` only as many as fit in those bytes (a group over them alone)."""
    chunks: list[list[Row]] = []
    if replicas is None or partitions_per_request <= 1:
        return [rows[i:i + PARTITION_BATCH_MAX] for rows in groups for i in range(0, len(rows), PARTITION_BATCH_MAX)]
    by_replicas: dict[Hashable, list[list[Row]]] = {}
    for rows in groups:
        by_replicas.setdefault(replicas(rows), []).append(rows)
    bounded = size is not None and most_bytes is not None
    for bucket in by_replicas.values():
        chunk: list[Row] = []
        taken = in_chunk = 0
        for rows in bucket:
            if len(rows) > PARTITION_BATCH_MAX:
                chunks += [rows[i:i + PARTITION_BATCH_MAX] for i in range(0, len(rows), PARTITION_BATCH_MAX)]
                continue
            weight = sum(map(size, rows)) if bounded else 0  # type: ignore[arg-type]
            if chunk and (taken == partitions_per_request or len(chunk) + len(rows) > PARTITION_BATCH_MAX
                          or (bounded and in_chunk + weight > most_bytes)):  # type: ignore[operator]
                chunks.append(chunk)
                chunk, taken, in_chunk = [], 0, 0
            chunk += rows
            taken += 1
            in_chunk += weight
        if chunk:
            chunks.append(chunk)
    return chunks


def value_bytes(value: Any) -> int:
    """About the bytes a statement's values take in a batch, as Cassandra counts them for its
    size warning: each value's own bytes, ~8 for a number, date or uuid, plus ~8 a cell."""
    if value is None:
        return 0
    if type(value) is int:  # most values: checked first
        return 16
    if isinstance(value, str):
        return len(value.encode()) + 8
    if isinstance(value, bytes):
        return len(value) + 8
    if isinstance(value, dict):
        return sum(value_bytes(k) + value_bytes(v) for k, v in value.items()) + 8
    if isinstance(value, (list, tuple, set, frozenset)):
        return sum(map(value_bytes, value)) + 8
    return 16


async def pages(session: Session, stmt: Any, params: Sequence[Any] | None,
                page_size: int | None = None, profile: Any = EXEC_PROFILE_DEFAULT) -> AsyncIterator[list[Any]]:
    """Every page of a query's result (`page_size` rows each; the driver's fetch size if None),
    fetched one round trip at a time; rows as the execution `profile` makes them (dicts, or
    tuples with TUPLES)."""
    paging_state = None
    while True:
        if page_size is None:
            rf = session.execute_async(stmt, params, paging_state=paging_state, execution_profile=profile)
        else:
            bound = stmt.bind(params)
            bound.fetch_size = page_size
            rf = session.execute_async(bound, paging_state=paging_state, execution_profile=profile)
        rows = await _result(rf)  # the callback delivers exactly this page's rows
        yield list(rows) if rows else []
        if not rf.has_more_pages:
            return
        paging_state = rf._paging_state  # noqa: SLF001 - the driver's resume token for this query
