"""The `store` fixture: each DocumentStore backend in turn (memory, a SQLite file, a
MongoDB-wire server: FerretDB in tests). Fails, never skips, if the server is down."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.mongo import MongoDocumentStore
from g60_chassis.sqlite import SqliteDocumentStore
from g60_chassis.store import DocumentStore


@pytest.fixture(params=["memory", "sqlite", "mongo"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DocumentStore]:
    s: DocumentStore
    name = f"test_{uuid.uuid4().hex[:10]}"
    if request.param == "memory":
        s = MemoryDocumentStore()
    elif request.param == "sqlite":
        s = SqliteDocumentStore(tmp_path / "t.sqlite")
    else:
        url = os.environ.get("G60_MONGO_URL", "mongodb://127.0.0.1:27017")
        s = MongoDocumentStore(url, name, timeout_ms=3000)
        assert await s.ping(), f"no MongoDB-wire server at {url}: run `make infra-up`"
    yield s
    if isinstance(s, MongoDocumentStore):
        await s._client.drop_database(name)
    await s.close()
