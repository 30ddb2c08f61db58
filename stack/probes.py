"""Readiness by a real request (an open port is not a ready server); each returns a detail or None."""

from __future__ import annotations

import logging

_quiet = logging.getLogger("starling.probe")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


def kafka(bootstrap: str) -> str | None:
    """Metadata from the broker: it lists itself once the KRaft controller has elected it."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000, "logger": _quiet})
    try:
        metadata = admin.list_topics(timeout=2)
    except Exception:  # noqa: BLE001 - any failure means "not ready yet"
        return None
    if not metadata.brokers:
        return None
    return f"{len(metadata.brokers)} broker(s), controller {metadata.controller_id}"


def cassandra(host: str, port: int) -> str | None:
    """`SELECT release_version FROM system.local` through the CQL native protocol."""
    from adapters.cql import blocking_cluster

    previous = logging.getLogger("cassandra").level
    logging.getLogger("cassandra").setLevel(logging.CRITICAL)
    cluster = blocking_cluster([host], port, timeout_s=2)
    try:
        session = cluster.connect()
        row = session.execute("SELECT release_version FROM system.local", timeout=5).one()
        return f"Cassandra {row.release_version}"
    except Exception:  # noqa: BLE001
        return None
    finally:
        cluster.shutdown()
        logging.getLogger("cassandra").setLevel(previous)


def redis(url: str) -> str | None:
    import redis as redis_lib

    client = redis_lib.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        if client.ping():
            return f"Redis {client.info('server')['redis_version']}"
    except Exception:  # noqa: BLE001
        return None
    finally:
        client.close()
    return None


def consumer_group(bootstrap: str, group: str, members: int = 1) -> str | None:
    """A worker is ready when its consumer group is Stable with at least `members` members
    (partitions assigned): with several workers, the first to join makes the group Stable before
    the others have joined, and each joining one then rebalances it."""
    from confluent_kafka import ConsumerGroupState
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000, "logger": _quiet})
    try:
        desc = admin.describe_consumer_groups([group], request_timeout=3)[group].result()
    except Exception:  # noqa: BLE001
        return None
    if desc.state != ConsumerGroupState.STABLE or len(desc.members) < members:
        return None
    return f"group {group} stable, {len(desc.members)} member(s)"


def http(url: str) -> str | None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return f"HTTP {resp.status} from {url}" if resp.status == 200 else None
    except (urllib.error.URLError, OSError):
        return None
