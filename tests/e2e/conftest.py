"""End-to-end fixtures: the four services as separate processes (uvicorn on 8101-8104 by
default) on the real Kafka and FerretDB, with topics, consumer groups and databases unique to
the test session so runs never see each other's data."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.e2e.harness import Platform, platform_env, running

BASE_PORT = int(os.environ.get("G60_E2E_BASE_PORT", "8101"))
SERVICES = ("projects", "funding", "matching", "subscriptions")


@pytest.fixture(scope="session")
def platform(tmp_path_factory) -> Iterator[Platform]:
    data = tmp_path_factory.mktemp("e2e")
    env = {
        **platform_env("e2e", data),
        # webhooks to the stub partner on loopback, retried within seconds rather than hours
        "G60_WEBHOOK_ALLOW_LOOPBACK": "1",
        "G60_WEBHOOK_RETRY_SCHEDULE_S": "[0, 0.5, 1, 1, 2, 2, 3, 3, 5, 5, 5, 5, 10, 10, 10, 10]",
        "G60_WEBHOOK_LEASE_S": "3",
        "G60_WEBHOOK_RESCAN_S": "1",
    }
    with running(env, SERVICES, BASE_PORT, data) as p:
        yield p


@pytest.fixture
def operator(platform: Platform) -> dict[str, str]:
    return {"Authorization": f"Bearer {platform.env['G60_BOOTSTRAP_OPERATOR_KEY']}"}
