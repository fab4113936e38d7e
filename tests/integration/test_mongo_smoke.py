"""Smoke test of the real MongoDB-wire path (FerretDB here, MongoDB in production) with PyMongo's
AsyncMongoClient: insert, find, update, and a unique index that rejects a duplicate. Fails if
the server is down."""

from __future__ import annotations

import os
import uuid

import pytest
from pymongo import ASCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError

pytestmark = pytest.mark.integration
URL = os.environ.get("G60_MONGO_URL", "mongodb://127.0.0.1:27017")


async def test_insert_find_update_and_unique_index():
    client: AsyncMongoClient = AsyncMongoClient(URL, serverSelectionTimeoutMS=3000)
    db = client[f"smoke_{uuid.uuid4().hex[:8]}"]
    try:
        enterprises = db.enterprises
        await enterprises.create_index([("uscc", ASCENDING)], unique=True)
        await enterprises.insert_one(
            {"_id": "e1", "uscc": "91310117MA1J3R7X4B", "city": "shanghai"}
        )
        await enterprises.insert_one({"_id": "e2", "uscc": "91330402MA2B8K1T82", "city": "jiaxing"})
        with pytest.raises(DuplicateKeyError):
            await enterprises.insert_one({"_id": "e3", "uscc": "91310117MA1J3R7X4B"})
        found = [d["_id"] async for d in enterprises.find({"city": "jiaxing"})]
        assert found == ["e2"]
        result = await enterprises.update_one({"_id": "e1"}, {"$set": {"headcount": 85}})
        assert result.modified_count == 1
        assert (await enterprises.find_one({"_id": "e1"}))["headcount"] == 85
        assert await enterprises.count_documents({}) == 2
    finally:
        await client.drop_database(db.name)
        await client.close()
