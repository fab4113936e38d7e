"""A planned pair of a wide change refreshed as a field update of its match read raw
(`service/refreshes.py`): the same stored fields and the same event as loading the match,
`Match.repropose`, `Match.refresh`, `Match.record` and a save of the whole match; a match
written between the read and the write is read again (same status) or fails the batch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from g60_chassis.aggregates import Aggregates, FromDoc
from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.store import Doc, VersionConflict
from matching.adapters.events import ContractMatchEvents
from matching.domain.audit import Decision, decision_id
from matching.domain.match import KEEP, Match
from matching.domain.results import Proposal
from matching.service.refreshes import Refreshes, refresh
from matching.service.retraction import Retractions
from services.matching.tests.unit.factories import Meddling

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
NOW = T0 + timedelta(days=2)
PACKED = ("enterprise_view", "funder_view", "decisions")
VIEW = {"total": 0.8123, "terms": [{"criterion": "cost", "score": 0.5, "note": "301 bp, 年"}]}
OTHER = {"total": 0.7001, "terms": [{"criterion": "cost", "score": None, "note": "missing"}]}
EVENTS = ContractMatchEvents("matches")


def decision(n: int, views: tuple[Any, Any] = (None, None)) -> Decision:
    return Decision(
        id=decision_id("m1", "proposed", n),
        match_id="m1",
        kind="proposed",
        at=T0 + timedelta(minutes=n),
        engine_version="e",
        market_version=n,
        as_of=T0.date(),
        project_id="p1",
        project_version=1,
        enterprise_id="e",
        offer_id="o",
        offer_version=1,
        score=0.5,
        enterprise_view=views[0],
        funder_view=views[1],
    )


@dataclass
class Case:
    status: str = "retracted"  # as stored
    decisions: int = 2  # recorded on it already (market versions 1..n)
    own: bool = False  # the earlier decisions hold breakdowns of their own
    views: tuple[Any, Any] | None = (VIEW, VIEW)  # the proposal's (None: asked without)
    allocated: bool = False  # the flag the refresh sets
    new: int | None = 50  # the market version of the re-proposal's decision (None: none)
    rank: int = 2
    days: int | None = 14  # its deadline from T0
    accepted: bool = False  # by the enterprise (a proposed one)
    reordered: bool = False  # the stored breakdowns' text has its keys in another order


CASES = {
    "re-proposed, breakdowns unchanged (its decision spliced in)": Case(),
    "re-proposed, no decision yet": Case(decisions=0),
    "re-proposed, decision recorded already (a redelivery)": Case(new=2),
    "re-proposed, breakdowns moved (earlier decisions pinned)": Case(views=(OTHER, VIEW)),
    "re-proposed, decisions with their own breakdowns": Case(own=True, views=(OTHER, OTHER)),
    "re-proposed, decisions full (the oldest but the first dropped)": Case(decisions=KEEP),
    "re-proposed, asked without breakdowns": Case(views=None),
    "re-proposed, no audit, breakdowns moved": Case(new=None, views=(VIEW, OTHER)),
    "re-proposed, allocated": Case(allocated=True, rank=1),
    "re-proposed, no deadline": Case(days=None),
    "re-proposed, deadline passed": Case(days=-3),
    "proposed, rank moved": Case(status="proposed", new=None, rank=3),
    "proposed, nothing moved": Case(status="proposed", new=None),
    "proposed, breakdowns moved": Case(status="proposed", new=None, views=(OTHER, OTHER)),
    "proposed, breakdowns moved, no decision": Case(
        status="proposed", decisions=0, new=None, views=(OTHER, VIEW)
    ),
    "proposed, same breakdowns in another key order": Case(
        status="proposed", new=None, rank=4, reordered=True
    ),
    "proposed, accepted by one side, flag set": Case(
        status="proposed", new=None, accepted=True, allocated=True
    ),
}


async def stored(
    case: Case, store: MemoryDocumentStore | None = None
) -> tuple[MemoryDocumentStore, Aggregates[Match]]:
    store = store or MemoryDocumentStore()
    matches = Aggregates(store, "matches", Match, packed=PACKED)
    own = (VIEW, OTHER) if case.own else (None, None)
    m = Match(
        id="m1",
        project_id="p1",
        offer_id="o",
        enterprise_id="e",
        funder_id="f",
        instrument="loan",
        amount_cny=1_000_000,
        rank=2,
        score=0.5,
        enterprise_view=VIEW,
        funder_view=VIEW,
        expires_at=None if case.days is None else T0 + timedelta(days=case.days),
        created_at=T0,
        updated_at=T0,
        decisions=[decision(n, own) for n in range(1, case.decisions + 1)],
        accepted_by_enterprise=case.accepted,
    )
    if case.status == "retracted":
        m.retract("no longer among the proposals", T0 + timedelta(days=1))
    await matches.add(m)
    if case.reordered:  # as written by an engine that ordered the breakdowns' keys otherwise
        doc = await store.get("matches", "m1")
        assert doc is not None
        text = '{"terms":[{"criterion":"cost","score":0.5,"note":"301 bp, 年"}],"total":0.8123}'
        await MemoryDocumentStore.set_fields(store, "matches", {"m1": {"enterprise_view": text}})
    return store, matches


def proposal(case: Case) -> Proposal:
    ev, fv = case.views or (None, None)
    return Proposal("p1", "o", case.rank, 0.5, 0.5, 0.5, None, enterprise_view=ev, funder_view=fv)


def the_decision(case: Case, p: Proposal) -> Decision | None:
    if case.new is None:
        return None
    return decision(case.new, (p.enterprise_view or {}, p.funder_view or {}))


async def loaded_way(case: Case) -> list[Doc]:
    """What the reconciliation did: load, re-propose, refresh, record, save whole."""
    store, matches = await stored(case)
    m = await matches.get("m1")
    assert m is not None
    p = proposal(case)
    kinds = m.repropose(NOW)
    changed = m.refresh(p, case.allocated, 7)
    if kinds and (d := the_decision(case, p)) is not None:
        m.record(d)
    if kinds or changed:
        sent = FromDoc[Match](lambda m, doc: EVENTS.match("proposed", m, doc)) if kinds else None
        await matches.save(m, sent)
    return await _docs(store)


async def raw_way(case: Case) -> list[Doc]:
    store, matches = await stored(case)
    retractions = Retractions(matches, EVENTS)
    [m] = await retractions.read(["m1"])
    assert m is not None
    p = proposal(case)
    write = refresh(m, p, case.allocated, 7, NOW, the_decision(case, p), EVENTS)
    if write is not None:
        await retractions.write([write])
    return await _docs(store)


async def _docs(store: MemoryDocumentStore) -> list[Doc]:
    docs = await store.find("matches", None, limit=10)
    for d in docs:
        for e in d["outbox"]:
            e.pop("id"), e.pop("time")
    return docs


@pytest.mark.parametrize("name", list(CASES))
async def test_a_field_refresh_stores_and_sends_what_a_load_and_save_did(name: str) -> None:
    case = CASES[name]
    before = await _docs((await stored(case))[0])
    loaded, raw = await loaded_way(case), await raw_way(case)
    assert raw == loaded
    [doc] = raw
    wrote = name != "proposed, nothing moved"
    assert doc["version"] == before[0]["version"] + wrote  # the case is not vacuous
    sent = [e["type"] for e in doc["outbox"]]
    assert sent == (["g60.match.proposed.v1"] if case.status == "retracted" else [])
    if case.status == "retracted":
        assert doc["status"] == "proposed" and doc["previous_status"] == "retracted"
        assert doc["outbox"][0]["data"]["enterprise_view"] == (case.views or (VIEW,))[0]


def meddling(change: Doc) -> Meddling:
    """A store on which another writer changes `m1` just before our first field update."""

    async def meddle(store: MemoryDocumentStore) -> None:
        await MemoryDocumentStore.set_fields(store, "matches", {"m1": change})

    return Meddling(meddle)


async def _refresh_on(store: Meddling, case: Case) -> None:
    matches = Aggregates(store, "matches", Match, packed=PACKED)
    retractions = Retractions(matches, EVENTS)
    [m] = await retractions.read(["m1"])
    assert m is not None
    writes, again = await Refreshes(EVENTS, None).decide(
        [], [(m, proposal(case))], {"p1": "o"}, 7, NOW
    )
    await retractions.write(writes, again)


async def test_a_match_written_between_the_read_and_the_write_is_read_again() -> None:
    """Its allocation flag set meanwhile (`flags.py`: a field update): read again, still
    retracted, proposed again from what it is now."""
    case = Case(new=None, allocated=True, rank=1)
    store = meddling({"allocated": True, "allocated_as_of": 6})
    await stored(case, store)
    await _refresh_on(store, case)
    assert store.calls == 2
    doc = await store.get("matches", "m1")
    assert doc is not None
    assert (doc["status"], doc["rank"], doc["allocated"], doc["version"]) == (
        "proposed",
        1,
        True,
        3,
    )
    assert doc["allocated_as_of"] == 6  # the flag already said so: not set again
    assert [e["type"] for e in doc["outbox"]] == ["g60.match.proposed.v1"]
    assert doc["outbox"][0]["data"]["version"] == 3


async def test_a_match_moved_to_another_status_meanwhile_fails_the_batch() -> None:
    """Proposed again by another writer meanwhile: not written over (a VersionConflict, as a
    lost save of a loaded match: the delivery is retried, reconciled again)."""
    case = Case(new=None)
    store = meddling({"status": "proposed", "previous_status": "retracted"})
    await stored(case, store)
    with pytest.raises(VersionConflict):
        await _refresh_on(store, case)
    doc = await store.get("matches", "m1")
    assert doc is not None and doc["version"] == 2 and doc["outbox"] == []
    assert doc["status"] == "proposed" and doc["rank"] == 2  # as the other writer left it
