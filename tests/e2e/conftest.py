"""End-to-end fixtures: the four services as separate processes (uvicorn on 8101-8104 by
default) on the real Kafka and FerretDB, with topics, consumer groups and databases unique to
the test session so runs never see each other's data."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.harness import Platform

BASE_PORT = int(os.environ.get("G60_E2E_BASE_PORT", "8101"))
SERVICES = ("projects", "funding", "matching", "subscriptions")


@pytest.fixture(scope="session")
def platform(tmp_path_factory) -> Iterator[Platform]:
    run = uuid.uuid4().hex[:8]
    data = tmp_path_factory.mktemp("e2e")
    env = {
        **os.environ,
        "G60_BUS": "kafka",
        "G60_STORE": "mongo",
        "G60_KAFKA_BOOTSTRAP": os.environ.get("G60_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        "G60_MONGO_URL": os.environ.get("G60_MONGO_URL", "mongodb://127.0.0.1:27017"),
        "G60_MONGO_DB_PREFIX": f"e2e{run}",
        "G60_TOPIC_PROJECTS": f"e2e.{run}.projects",
        "G60_TOPIC_FUNDING": f"e2e.{run}.funding",
        "G60_TOPIC_MATCHES": f"e2e.{run}.matches",
        "G60_CONSUMER_GROUP_PREFIX": f"e2e-{run}",
        "G60_BOOTSTRAP_OPERATOR_KEY": f"operator-{run}-" + uuid.uuid4().hex,
        "G60_OUTBOX_INTERVAL_S": "0.2",
        "G60_DATA_DIR": str(data),
        "G60_INSTANCE_ID": f"e2e-{run}",
        # webhooks to the stub partner on loopback, retried within seconds rather than hours
        "G60_WEBHOOK_ALLOW_LOOPBACK": "1",
        "G60_WEBHOOK_RETRY_SCHEDULE_S": "[0, 0.5, 1, 1, 2, 2, 3, 3, 5, 5, 5, 5, 10, 10, 10, 10]",
        "G60_WEBHOOK_LEASE_S": "3",
        "G60_WEBHOOK_RESCAN_S": "1",
    }
    ports = {s: BASE_PORT + i for i, s in enumerate(SERVICES)}
    p = Platform(env, ports, data)
    try:
        for service in SERVICES:
            p.start(service)
        yield p
    finally:
        for service in list(p.procs):
            p.stop(service)


@pytest.fixture
def operator(platform: Platform) -> dict[str, str]:
    return {"Authorization": f"Bearer {platform.env['G60_BOOTSTRAP_OPERATOR_KEY']}"}
