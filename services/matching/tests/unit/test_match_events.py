"""The match events keep their contract: each event's JSON, built off the match's attributes
(`adapters/events.payload`, no validate/dump round trip), is what the contract's own model
makes of the match, and validates against it; checked on the events the use cases leave in
the outbox (new proposals of a wide change, retractions, acceptances) and on matches in every
state the lifecycle reaches."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic_core import from_json, to_json

from g60_chassis.aggregates import Aggregates, FromDoc
from g60_chassis.batches import unsent
from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.store import BATCH
from g60_contracts.events import MatchSnapshot
from matching.adapters.events import ContractMatchEvents, payload
from matching.bootstrap import PACKED
from matching.domain.match import Match, match_id
from services.matching.tests.unit.test_use_cases import OPERATOR, T0, Market

PROJECTS = [f"prj-{i:02d}" for i in range(10)]


def contract(match: Match) -> dict[str, Any]:
    """What the events were built as before: the contract's model, validated then dumped."""
    return MatchSnapshot.model_validate(match, from_attributes=True).model_dump(mode="json")


def _match(**kw: Any) -> Match:
    view = {
        "total": 0.71,
        "terms": [
            {"criterion": "cost", "score": 0.9, "weight": 0.3, "unknown": False, "note": "380 bp"},
            {"criterion": "speed", "score": None, "weight": 0.2, "unknown": True, "note": ""},
        ],
    }
    fields: dict[str, Any] = {
        "id": "mat_0123456789abcdef",
        "project_id": "prj-1",
        "offer_id": "off-1",
        "enterprise_id": "ent-1",
        "funder_id": "fun-1",
        "instrument": "credit_loan",
        "rank": 2,
        "score": 0.7134,
        "enterprise_view": view,
        "funder_view": {**view, "total": 0.5},
        "amount_cny": 5_000_000,
        "expires_at": T0 + timedelta(days=14),
        "created_at": T0,
        "updated_at": T0,
        "version": 3,
    }
    return Match.model_validate({**fields, **kw})


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"expires_at": None, "rank": None},
        {"allocated": True, "allocated_as_of": 42},
        {"status": "closed", "previous_status": "reserved", "closed_amount_cny": 4_000_000},
        {"status": "declined", "reason": "declined by funder: no", "accepted_by_enterprise": True},
        {"updated_at": T0.replace(microsecond=123456), "score": 1.0},
    ],
)
def test_the_payload_is_the_contract_s_dump_of_the_match(change: dict[str, Any]) -> None:
    match = _match(**change)
    built = payload(match)
    assert built == contract(match)
    assert list(built) == list(contract(match))  # the same fields, in the contract's order
    assert MatchSnapshot.model_validate(built).model_dump(mode="json") == built


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"expires_at": None, "rank": None},
        {"status": "closed", "previous_status": "reserved", "closed_amount_cny": 4_000_000},
        {"updated_at": T0.replace(microsecond=123456), "score": 1.0, "allocated": True},
    ],
)
async def test_a_match_dumped_once_stores_and_sends_the_text_it_did_dumped_twice(
    change: dict[str, Any],
) -> None:
    """The events built from the stored document (`FromDoc`): the same stored text, the same
    event text (and fields, in order) as the events built off the match alone."""
    events = ContractMatchEvents("matches")
    stored: list[tuple[bytes, bytes]] = []
    for built in (
        lambda m: events.match("proposed", m),
        FromDoc(lambda m, doc: events.match("proposed", m, doc)),
    ):
        store = MemoryDocumentStore()
        matches = Aggregates(store, "matches", Match, packed=PACKED)
        await matches.add_many([_match(**change)], built)
        [doc] = await store.find("matches", None)
        [outbox] = (await unsent(store, "matches")).values()
        [event] = outbox
        doc = {k: v for k, v in doc.items() if k not in ("outbox", BATCH)}
        stored.append((to_json(doc), to_json(event["data"])))
    assert stored[0] == stored[1]
    assert from_json(stored[1][1]) == contract(_match(**change, version=1))


def test_an_event_carries_the_type_subject_and_payload_of_its_transition() -> None:
    match = _match()
    [(topic, event)] = ContractMatchEvents("matches").match("retracted", match)
    assert (topic, event.type, event.subject) == ("matches", "g60.match.retracted.v1", match.id)
    assert event.data == contract(match)


async def test_the_events_a_wide_change_stores_are_the_contract_s() -> None:
    m = Market()
    await m.wide(PROJECTS)
    await m.offer("new", pricing={"rate_bp": 300})  # enters every top k, displaces one of each
    await m.offer("off-b", status="withdrawn")
    await m.svc.lifecycle.accept(OPERATOR, match_id(PROJECTS[0], "new"), "enterprise")
    await m.svc.proposals.settling.settled()

    events = await unsent(m.store, "matches")
    kinds: dict[str, int] = {}
    for id, outbox in events.items():
        for e in outbox:
            kinds[e["type"]] = kinds.get(e["type"], 0) + 1
            snapshot = MatchSnapshot.model_validate(e["data"])  # the contract validates it
            assert snapshot.model_dump(mode="json") == e["data"]
            assert e["subject"] == e["data"]["id"] == id
    assert kinds["g60.match.proposed.v1"] >= len(PROJECTS)
    assert kinds["g60.match.retracted.v1"] >= len(PROJECTS)
    assert kinds["g60.match.accepted.v1"] == 1
    for pid in PROJECTS:  # a new match's event is the contract's dump of the stored match
        match = await m.match(pid, "new")
        [proposed] = [e for e in events[match.id] if e["type"] == "g60.match.proposed.v1"]
        if pid != PROJECTS[0]:  # (the first was accepted since: it moved on)
            assert proposed["data"] == contract(match)


def test_a_proposal_without_breakdowns_is_not_an_event_payload() -> None:
    """The contract wants both breakdowns; the use cases always give a new match its own
    (`Proposals._with_views`): a match without them fails the contract, and the test above
    would see it."""
    match = _match(enterprise_view={}, funder_view={})
    with pytest.raises(ValueError):
        MatchSnapshot.model_validate(payload(match))
