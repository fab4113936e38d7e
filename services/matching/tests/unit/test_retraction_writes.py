"""A retraction written as a field update (`service/retraction.py`): the same fields and event
as `Match.retract` and a save of the whole match, whether the match was loaded or read raw, and
a compare-and-set on the version read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from g60_chassis.aggregates import Aggregates, Outgoing
from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.store import VersionConflict
from matching.adapters.events import ContractMatchEvents
from matching.domain.match import Match, retracted
from matching.service.lifecycle import Lifecycle
from matching.service.retraction import REASON, Retractions
from services.matching.tests.unit.factories import Meddling

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
PACKED = ("enterprise_view", "funder_view", "decisions")
VIEW = {"fit": {"score": 0.8123, "notes": ["a", "b"]}}


def match(i: int, days: int | None) -> Match:
    return Match(
        id=f"m{i}",
        project_id=f"p{i}",
        offer_id="o",
        enterprise_id="e",
        funder_id="f",
        instrument="loan",
        amount_cny=1_000_000,
        rank=2,
        score=0.5,
        enterprise_view=VIEW,
        funder_view=VIEW,
        expires_at=None if days is None else T0 + timedelta(days=days),
        created_at=T0,
        updated_at=T0,
    )


def retracted_event(m: Match) -> Outgoing:
    return ContractMatchEvents("matches").match("retracted", m)


@pytest.mark.parametrize("days", [None, 14, -3])  # no deadline, a later one, one passed
def test_the_fields_are_those_match_retract_changes(days: int | None) -> None:
    m, now = match(1, days), T0 + timedelta(days=1)
    fields = retracted(m.status, m.expires_at, REASON, now)
    assert m.retract(REASON, now) == ["retracted"]
    assert fields is not None
    assert fields == {k: getattr(m, k) for k in fields}  # expiry_day computed, moved too
    assert retracted("closed", m.expires_at, REASON, now) is None  # not open: nothing


async def test_raw_and_loaded_retractions_store_and_send_what_a_save_did() -> None:
    """Three ways, three stores, the same documents and events (event ids and times aside)."""
    later = T0 + timedelta(days=1)
    results = []
    for way in ("save", "loaded", "raw"):
        store = MemoryDocumentStore()
        matches = Aggregates(store, "matches", Match, packed=PACKED)
        events = ContractMatchEvents("matches")
        for i, days in enumerate((14, -3, None)):
            await matches.add(match(i, days))
        ids = ["m0", "m1", "m2"]
        r = Retractions(matches, events)
        if way == "save":
            for m in [await matches.get(i) for i in ids]:
                assert m is not None
                assert m.retract(REASON, later) == ["retracted"]
                await matches.save(m, retracted_event)
        else:
            got = [await matches.get(i) for i in ids] if way == "loaded" else await r.read(ids)
            await r.write([w for m in got if m is not None and (w := r.retract(m, later))])
        docs = [await store.get("matches", i) for i in ids]
        for d in docs:
            assert d is not None
            for e in d["outbox"]:
                e.pop("id"), e.pop("time")
        results.append(docs)
    assert results[0] == results[1] == results[2]
    assert [d["outbox"][0]["type"] for d in results[2] if d] == ["g60.match.retracted.v1"] * 3


async def test_a_match_moved_since_it_was_read_is_not_retracted_and_fails_the_write() -> None:
    store = MemoryDocumentStore()
    matches = Aggregates(store, "matches", Match, packed=PACKED)
    r = Retractions(matches, ContractMatchEvents("matches"))
    await matches.add(match(1, 14))
    [read] = await r.read(["m1"])
    assert read is not None
    moved = await matches.get("m1")
    assert moved is not None
    moved.accept("enterprise", T0)
    await matches.save(moved)  # accepted meanwhile: version 2
    retraction = r.retract(read, T0 + timedelta(days=1))
    assert retraction is not None
    with pytest.raises(VersionConflict):
        await r.write([retraction])
    after = await matches.get("m1")
    assert after is not None and after.status == "proposed" and after.version == 2
    assert (await store.get("matches", "m1") or {})["outbox"] == []


WITHDRAWN = "the offer was withdrawn"


async def _withdrawal_fixture(store: MemoryDocumentStore) -> Aggregates[Match]:
    """Matches of offer `o` in every state a withdrawal meets (one of another offer)."""
    matches = Aggregates(store, "matches", Match, packed=PACKED)
    await store.ensure_index("matches", "offer_id")
    for i, days in enumerate((14, -3, None, 14, 14, 14)):
        await matches.add(match(i, days))
    steps: dict[str, Callable[[Match], object]] = {
        "m1": lambda m: m.accept("enterprise", T0),  # accepted by one side: still open
        "m2": lambda m: (m.accept("enterprise", T0), m.accept("funder", T0)),  # agreed
        "m3": lambda m: (m.accept("enterprise", T0), m.accept("funder", T0), m.reserved(T0)),
        "m4": lambda m: m.decline("funder", "no", T0),  # not open: left alone
    }
    for id, step in steps.items():
        m = await matches.get(id)
        assert m is not None
        step(m)
        await matches.save(m)
    other = match(6, 14).model_copy(update={"id": "m6", "offer_id": "o2"})
    await matches.add(other)
    return matches


async def test_a_withdrawal_stores_and_sends_what_a_transition_per_match_did() -> None:
    """`Lifecycle.retract_all` (raw reads, one field update) against what it did before: every
    open match of the offer loaded, retracted and saved whole with its event."""
    later = T0 + timedelta(days=1)
    results = []
    for way in ("transitions", "fields"):
        store = MemoryDocumentStore()
        matches = await _withdrawal_fixture(store)
        events = ContractMatchEvents("matches")
        if way == "transitions":
            for m in await matches.every({"offer_id": "o"}):
                if m.retract(WITHDRAWN, later):
                    await matches.save(m, retracted_event)
        else:
            await Lifecycle(matches, events, lambda: later).retract_all(None, "o", WITHDRAWN)
        docs = await store.find("matches", None, limit=100)
        for d in docs:
            for e in d["outbox"]:
                e.pop("id"), e.pop("time")
        results.append(docs)
    assert results[0] == results[1]
    status = {d["_id"]: d["status"] for d in results[1]}
    assert status == {
        **dict.fromkeys(["m0", "m1", "m2", "m3", "m5"], "retracted"),
        "m4": "declined",
        "m6": "proposed",
    }
    sent = {d["_id"] for d in results[1] if d["outbox"]}
    assert sent == {"m0", "m1", "m2", "m3", "m5"}


async def accept_m1(store: MemoryDocumentStore) -> None:
    """Another writer accepts `m1` (funder side)."""
    doc = await store.get("matches", "m1")
    assert doc is not None
    doc["accepted_by_funder"] = True
    await store.update("matches", doc, doc["version"])


async def test_a_withdrawal_reads_again_and_retracts_a_match_written_meanwhile() -> None:
    store = Meddling(accept_m1)
    matches = await _withdrawal_fixture(store)
    later = T0 + timedelta(days=1)
    events = ContractMatchEvents("matches")
    await Lifecycle(matches, events, lambda: later).retract_all(None, "o", WITHDRAWN)
    assert store.calls == 2  # the lost one written in a second round
    m1 = await matches.get("m1")
    assert m1 is not None
    assert (m1.status, m1.accepted_by_funder, m1.reason) == ("retracted", True, WITHDRAWN)
    doc = await store.get("matches", "m1")
    assert doc is not None and [e["type"] for e in doc["outbox"]] == ["g60.match.retracted.v1"]
    assert doc["outbox"][0]["data"]["accepted_by_funder"] is True  # the event says what it is


async def test_a_project_withdrawal_retracts_only_that_projects_matches() -> None:
    store = MemoryDocumentStore()
    matches = await _withdrawal_fixture(store)
    lifecycle = Lifecycle(matches, ContractMatchEvents("matches"), lambda: T0)
    await lifecycle.retract_all("p0", None, "the project was withdrawn")
    await lifecycle.retract_all(None, None, "nothing named: nothing retracted")
    docs = await store.find("matches", None, limit=100)
    assert [d["_id"] for d in docs if d["status"] == "retracted"] == ["m0"]
