"""The delivery log's retention on the real stores: a SQLite file and a MongoDB-wire server
(FerretDB) over TCP, where the pass's reads by day go through the index. Fails, never skips,
if the server is down."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from g60_chassis.mongo import MongoDocumentStore
from g60_chassis.sqlite import SqliteDocumentStore
from g60_chassis.store import DocumentStore
from services.subscriptions.tests.unit.test_retention import past_the_window
from subscriptions.service.journal import INDEXES

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "mongo"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DocumentStore]:
    if request.param == "sqlite":
        s: DocumentStore = SqliteDocumentStore(tmp_path / "t.sqlite")
        yield s
        await s.close()
        return
    url = os.environ.get("G60_MONGO_URL", "mongodb://127.0.0.1:27017")
    name = f"test_{uuid.uuid4().hex[:10]}"
    mongo = MongoDocumentStore(url, name, timeout_ms=3000)
    assert await mongo.ping(), f"no MongoDB-wire server at {url}: run `make infra-up`"
    yield mongo
    await mongo.close()
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
    await client.drop_database(name)
    await client.close()


async def test_deliveries_past_the_window_go_on_each_store(store: DocumentStore) -> None:
    for collection, field in INDEXES:
        await store.ensure_index(collection, field)
    await past_the_window(store)
