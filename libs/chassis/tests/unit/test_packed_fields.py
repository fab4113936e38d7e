"""`Aggregates(packed=)`: each packed field is stored as the JSON text of its `model_dump`
(now written straight from the attribute by the field's own serialiser), and read back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_core import to_json

from g60_chassis.aggregates import Aggregates
from g60_chassis.memory_store import MemoryDocumentStore


class Note(BaseModel):
    at: datetime
    score: float | None = None
    view: dict[str, Any] | None = None


class Thing(BaseModel):
    id: str
    version: int = 0
    kind: str = "x"
    view: dict[str, Any] = {}
    notes: list[Note] = []


def _thing() -> Thing:
    at = datetime(2026, 11, 29, 8, 0, 0, 123456, tzinfo=UTC)
    view = {"total": 0.1 + 0.2, "terms": [{"criterion": "cost", "score": None, "w": 1e-9}]}
    return Thing(
        id="t1",
        view={**view, "at": at, "city": "上海"},
        notes=[Note(at=at, score=2 / 3, view=view), Note(at=at)],
    )


@pytest.mark.asyncio
async def test_packed_text_is_the_model_dumps_and_reads_back() -> None:
    thing = _thing()
    things = Aggregates(MemoryDocumentStore(), "things", Thing, packed=("view", "notes"))
    doc = things._dump(thing)
    dumped = thing.model_dump(mode="json")  # what it was written from before
    assert doc["view"] == to_json(dumped["view"]).decode()
    assert doc["notes"] == to_json(dumped["notes"]).decode()
    assert {k: v for k, v in doc.items() if k not in ("view", "notes", "_id")} == {
        k: v for k, v in dumped.items() if k not in ("view", "notes", "id")
    }
    await things.add(thing)
    got = await things.get("t1")
    assert got is not None
    assert got.model_dump(mode="json") == {**dumped, "version": 1}
