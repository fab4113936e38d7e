"""Smoke test of the real MongoDB-wire path (FerretDB here, MongoDB in production) with PyMongo's
AsyncMongoClient: insert, find, update, and a unique index that rejects a duplicate. Fails
(never skips) when the server is down."""

from __future__ import annotations

import pytest
from pymongo import ASCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError

pytestmark = pytest.mark.integration


async def test_insert_find_update_and_unique_index(mongo_url, unique_names):
    client: AsyncMongoClient = AsyncMongoClient(mongo_url, serverSelectionTimeoutMS=3000)
    try:
        enterprises = client[unique_names.database()].enterprises
        await enterprises.create_index([("uscc", ASCENDING)], unique=True)
        await enterprises.insert_one(
            {"_id": "e1", "uscc": "91310117MA1J3R7X4B", "city": "shanghai"}
        )
        await enterprises.insert_one({"_id": "e2", "uscc": "91330402MA2B8K1T82", "city": "jiaxing"})
        with pytest.raises(DuplicateKeyError):
            await enterprises.insert_one({"_id": "e3", "uscc": "91310117MA1J3R7X4B"})
        with pytest.raises(DuplicateKeyError):
            await enterprises.insert_one({"_id": "e1", "uscc": "91320505MA1X2Y3Z4W"})
        found = [d["_id"] async for d in enterprises.find({"city": "jiaxing"})]
        assert found == ["e2"]
        result = await enterprises.update_one({"_id": "e1"}, {"$set": {"headcount": 85}})
        assert (result.matched_count, result.modified_count) == (1, 1)
        assert (await enterprises.find_one({"_id": "e1"}))["headcount"] == 85
        assert await enterprises.count_documents({}) == 2
    finally:
        await client.close()
