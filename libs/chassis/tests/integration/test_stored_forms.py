"""Stored forms that keep FerretDB's work per write small, on each store: an aggregate's
`packed` fields are stored as JSON text, a batch document's items as one compressed text;
documents an older release wrote (nested values, plain JSON text) still read and relay the
same."""

from __future__ import annotations

import base64
import zlib
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_core import to_json

from g60_chassis.aggregates import Aggregates
from g60_chassis.batches import LZ4, ZIPPED, batch_collection, items_of, unsent, waiting
from g60_chassis.bus import MemoryBus
from g60_chassis.envelope import Envelope
from g60_chassis.outbox import OutboxRelay, outbox_entry
from g60_chassis.store import BATCH

pytestmark = pytest.mark.integration


class Scored(BaseModel):
    id: str
    owner: str
    view: dict[str, Any] = {}
    log: list[dict[str, Any]] = []
    version: int = 0


def made(s: Scored) -> list[tuple[str, Envelope]]:
    data = {"owner": s.owner, "view": s.view}
    return [("t", Envelope(type="scored.v1", source="/t", subject=s.id, data=data))]


VIEW = {"total": 0.75, "terms": [{"criterion": "cost", "score": 0.5, "note": "301 bp, 年"}]}


async def test_packed_fields_are_stored_as_text_and_read_back_as_values(store):
    scored = Aggregates(store, "scored", Scored, packed=("view", "log"))
    await scored.add(Scored(id="a", owner="o1", view=VIEW, log=[{"kind": "proposed"}]))
    raw = await store.get("scored", "a")
    assert raw is not None and isinstance(raw["view"], str) and isinstance(raw["log"], str)
    assert raw["owner"] == "o1"  # the fields filtered on stay values
    got = await scored.get("a")
    assert got == Scored(id="a", owner="o1", view=VIEW, log=[{"kind": "proposed"}], version=1)
    got.log = [*got.log, {"kind": "flagged"}]
    await scored.save(got)
    assert (await scored.get("a")).log == [{"kind": "proposed"}, {"kind": "flagged"}]  # type: ignore[union-attr]
    [listed] = (await scored.list({"owner": "o1"}))[0]
    assert listed.view == VIEW


async def test_a_packed_field_is_set_as_its_text_and_read_back_as_its_value(store):
    scored = Aggregates(store, "scored", Scored, packed=("view", "log"))
    await scored.add(Scored(id="a", owner="o1", view=VIEW))
    other = {**VIEW, "total": 0.5}
    change = {"a": {"view": to_json(other).decode(), "owner": "o2"}}
    assert await scored.set_fields(change, expected={"a": 1}) == set()
    assert await scored.get("a") == Scored(id="a", owner="o2", view=other, version=2)
    with pytest.raises(ValueError):  # the value itself, not its text: refused
        await scored.set_fields({"a": {"view": other}}, expected={"a": 2})
    with pytest.raises(ValueError):  # not a field of the model
        await scored.set_fields({"a": {"nope": "x"}}, expected={"a": 2})


async def test_a_document_an_older_release_wrote_unpacked_reads_the_same(store):
    await store.insert("scored", {"_id": "old", "owner": "o1", "view": VIEW, "log": []})
    scored = Aggregates(store, "scored", Scored, packed=("view", "log"))
    old = await scored.get("old")
    assert old == Scored(id="old", owner="o1", view=VIEW, version=1)
    await scored.save(old)  # written again: packed from now on
    raw = await store.get("scored", "old")
    assert raw is not None and isinstance(raw["view"], str)
    assert await scored.get("old") == Scored(id="old", owner="o1", view=VIEW, version=2)


async def test_batch_items_are_one_compressed_text_and_older_batches_are_still_relayed(store):
    bus = MemoryBus(keep_log=True)
    relay = OutboxRelay(store, bus, ["scored"])
    scored = Aggregates(store, "scored", Scored, packed=("view",))
    await scored.add_many([Scored(id="n1", owner="o"), Scored(id="n2", owner="o")], made)
    [stored] = await store.find(batch_collection("scored"))
    assert "items" not in stored and ZIPPED not in stored and isinstance(stored[LZ4], str)
    plain = to_json(items_of(stored))
    assert len(base64.b64decode(stored[LZ4])) < len(plain)  # compressed
    assert [len(b["items"]) for b in await waiting(store, "scored", 10)] == [2]
    # batch documents of the older layouts (items as values; as plain JSON text; zlib'd)
    # whose writers died before the documents were written: the scan creates the documents
    # and publishes their events
    forms = (
        lambda items: {"items": items},
        lambda items: {"items": to_json(items).decode()},
        lambda items: {ZIPPED: base64.b64encode(zlib.compress(to_json(items), 1)).decode()},
    )
    for n, form in enumerate(forms, 1):
        doc = {"_id": f"o{n}", "owner": "o", "view": VIEW, "log": [], BATCH: f"0000old{n}"}
        events = [outbox_entry(t, e) for t, e in made(Scored(id=f"o{n}", owner="o", view=VIEW))]
        old = {"_id": f"0000old{n}", **form([{"doc": doc, "events": events}])}
        await store.insert(batch_collection("scored"), old)
    assert set(await unsent(store, "scored")) == {"n1", "n2"}  # o1-o3 do not exist yet
    assert await relay.drain() == 5
    assert sorted(e.subject for _, e in bus.log) == ["n1", "n2", "o1", "o2", "o3"]
    for id in ("o1", "o2", "o3"):
        assert (await scored.get(id)) == Scored(id=id, owner="o", view=VIEW, version=1)
    assert await waiting(store, "scored", 10) == [] and await unsent(store, "scored") == {}
