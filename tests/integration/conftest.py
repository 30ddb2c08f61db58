import pytest


@pytest.fixture(autouse=True)
def _real_services(stack):  # every integration test needs the real stack
    return stack


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
