import secrets

import pytest
from confluent_kafka.admin import AdminClient, NewTopic


@pytest.fixture(autouse=True)
def _real_services(stack):  # every integration test needs the real stack
    return stack


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def topic(stack):
    """A topic of the test's own, 3 partitions: what it writes is no event, and must not reach
    topics that other tests read as events (the e2e tests read `verdicts` whole)."""
    name = stack.topic(f"test-topic-{secrets.token_hex(4)}")
    admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])[name].result(30)
    yield name
    admin.delete_topics([name])[name].result(30)
