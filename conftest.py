"""Shared fixtures for the tests that talk to the real servers (`make infra-up` starts them).

- `kafka_bootstrap` (session): G60_KAFKA_BOOTSTRAP, default 127.0.0.1:9092
- `mongo_url` (session): G60_MONGO_URL, default mongodb://127.0.0.1:27017
- `unique_names`: topic, consumer-group and database names of this test only; the topics and
  databases it handed out are deleted after the test (best effort)

When a server does not answer, every test that asks for its address fails at once with the
command that starts it: integration tests never skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import uuid
from collections.abc import AsyncIterator

import pytest
from hypothesis import settings as hypothesis_settings

# CI (`.ci/run` sets CI=true) draws the same examples every run: a red CI must mean the change
# broke something, not that this run's draw found an old corner. Runs on a developer's machine
# keep drawing new examples (and replay the failures they found, from `.hypothesis/`).
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

KAFKA_DEFAULT = "127.0.0.1:9092"
MONGO_DEFAULT = "mongodb://127.0.0.1:27017"


def _answers(hosts: list[tuple[str, int]]) -> bool:
    for host, port in hosts:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=2):
            return True
    return False


def _kafka_hosts(bootstrap: str) -> list[tuple[str, int]]:
    hosts = []
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        hosts.append((host.strip("[]") or "127.0.0.1", int(port or 9092)))
    return hosts


def _mongo_hosts(url: str) -> list[tuple[str, int]]:
    from pymongo.uri_parser import parse_uri

    return [(host, int(port)) for host, port in parse_uri(url)["nodelist"]]


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    bootstrap = os.environ.get("G60_KAFKA_BOOTSTRAP", KAFKA_DEFAULT)
    if not _answers(_kafka_hosts(bootstrap)):
        pytest.fail(
            f"Kafka is not answering on {bootstrap}: start it with `make infra-up` "
            "(or point G60_KAFKA_BOOTSTRAP at a broker)",
            pytrace=False,
        )
    return bootstrap


@pytest.fixture(scope="session")
def mongo_url() -> str:
    url = os.environ.get("G60_MONGO_URL", MONGO_DEFAULT)
    if not _answers(_mongo_hosts(url)):
        pytest.fail(
            f"MongoDB/FerretDB is not answering on {url}: start it with `make infra-up` "
            "(or point G60_MONGO_URL at a server)",
            pytrace=False,
        )
    return url


class UniqueNames:
    """Names no other test (or earlier run) uses. Kafka topics and groups: [a-zA-Z0-9-];
    databases: [a-zA-Z0-9_], at most 63 characters (FerretDB's limit)."""

    def __init__(self, test_name: str) -> None:
        stem = re.sub(r"[^a-zA-Z0-9]+", "_", test_name.removeprefix("test_")).strip("_")
        self.stem = f"t_{stem[:28]}_{uuid.uuid4().hex[:8]}"
        self.topics: list[str] = []
        self.databases: list[str] = []

    def topic(self, suffix: str = "events") -> str:
        name = f"{self.stem}-{suffix}".replace("_", "-")
        self.topics.append(name)
        return name

    def group(self, suffix: str = "group") -> str:
        return f"{self.stem}-{suffix}".replace("_", "-")

    def database(self, suffix: str = "db") -> str:
        name = f"{self.stem}_{suffix}"[:63]
        self.databases.append(name)
        return name


async def _cleanup(names: UniqueNames) -> None:
    if names.databases:
        from pymongo import AsyncMongoClient

        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
            os.environ.get("G60_MONGO_URL", MONGO_DEFAULT), serverSelectionTimeoutMS=2000
        )
        try:
            for db in names.databases:
                with contextlib.suppress(Exception):
                    await client.drop_database(db)
        finally:
            await client.close()
    if names.topics:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(
            bootstrap_servers=os.environ.get("G60_KAFKA_BOOTSTRAP", KAFKA_DEFAULT),
            request_timeout_ms=5000,
        )
        with contextlib.suppress(Exception):
            await asyncio.wait_for(admin.start(), 5)
            existing = set(await admin.list_topics())
            if doomed := [t for t in names.topics if t in existing]:
                await asyncio.wait_for(admin.delete_topics(doomed), 10)
        with contextlib.suppress(Exception):
            await admin.close()


@pytest.fixture
async def unique_names(request: pytest.FixtureRequest) -> AsyncIterator[UniqueNames]:
    names = UniqueNames(request.node.name)
    yield names
    await _cleanup(names)
