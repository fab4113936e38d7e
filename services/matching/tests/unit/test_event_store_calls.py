"""What the matcher asks of its store per offer event and per allocation (issues 8 and 9): the
changed matches of a batch go in one write (its retractions in one field update beside it, the
displaced matches read raw, never rewritten whole), the offer's view is written
once even when the change is wide (marked `pending` in that write), the allocation's flags of a
batch are one field update and one insert of their decisions, and the read model validates a
view once."""

from __future__ import annotations

from typing import Any

import pytest

from g60_chassis.envelope import Envelope
from g60_chassis.store import VersionConflict
from g60_contracts.events import ProjectSnapshot
from matching.domain.match import match_id
from services.matching.tests.unit.test_store_round_trips import CountingStore, counting
from services.matching.tests.unit.test_use_cases import Market, offer_data

PROJECTS = [f"prj-{i:02d}" for i in range(12)]


async def wide_market() -> tuple[Market, CountingStore]:
    market = Market()
    market.svc.allocation.debounce_s = 3600.0  # the allocation runs only when a test asks
    await market.wide(PROJECTS)
    return market, counting(market)


async def test_a_wide_offer_event_writes_its_view_once_and_its_settling_retracts_in_one_write() -> (
    None
):
    market, store = await wide_market()
    await market.offer("new", pricing={"rate_bp": 300})  # first in all 12 top ks

    writes = {k: n for k, n in store.calls.items() if k[0] not in ("get", "find", "states")}
    assert writes == {
        ("insert", "offer_views"): 1,  # once, marked pending (it was written twice)
        ("insert_many", "decision_inputs"): 1,
        ("insert_many", "matches"): 1,  # the 12 new pairs
        ("insert", "_outbox_matches"): 1,  # their events
    }  # the 12 pushed out are left to the settling (they still fit), not read either
    assert ("states", "matches") not in store.calls
    view = await market.store.get("offer_views", "new")
    assert view is not None and view["pending"]
    for pid in PROJECTS:  # what the event path owes is there: the new pair in
        assert (await market.match(pid, "new")).status == "proposed"
    store.calls.clear()
    await market.svc.proposals.settling.settled()
    assert store.calls[("set_fields", "matches")] == 1  # the 12 pushed out, retracted together
    for pid in PROJECTS:
        assert (await market.match(pid, "off-c")).status == "retracted"
        assert await market.events(pid, "off-c") == [
            "g60.match.proposed.v1",
            "g60.match.retracted.v1",
        ]
    view = await market.store.get("offer_views", "new")
    assert view is not None and not view["pending"]

    store.calls.clear()  # a changed offer: its view rewritten once too
    await market.offer("new", pricing={"rate_bp": 410})
    assert store.calls[("update", "offer_views")] == 1
    assert ("update", "matches") not in store.calls


async def test_a_withdrawn_offers_matches_are_retracted_in_one_field_update() -> None:
    """Its matches were one read and one whole save each (`Lifecycle.transition`: two round
    trips a match, in turn: an offer in 12 top ks, 24 sequential calls)."""
    market, store = await wide_market()
    await market.offer("new", pricing={"rate_bp": 300})  # first in all 12 top ks
    await market.svc.proposals.settling.settled()
    store.calls.clear()
    await market.offer("new", "withdrawn", pricing={"rate_bp": 300})
    # its 12 matches with their events; then the 12 pairs that moved back up into the top
    # ks (the publication had retracted them), proposed again: field updates too
    assert store.calls[("set_fields", "matches")] == 2
    assert store.calls[("find", "matches")] == 1  # read raw, one page
    assert ("update", "matches") not in store.calls  # was 12, one per match
    assert ("update_many", "matches") not in store.calls  # the 12 moved back: saved whole
    # the reconciliation after: only the pairs that moved up, read raw in one call (the
    # removed ones were just retracted: not read again); it was 36 gets, then 12
    assert store.calls[("states", "matches")] == 1
    assert ("get", "matches") not in store.calls
    for pid in PROJECTS:
        assert (await market.match(pid, "off-c")).status == "proposed"
        assert (await market.events(pid, "off-c"))[-1] == "g60.match.proposed.v1"
    for pid in PROJECTS:
        assert (await market.match(pid, "new")).status == "retracted"
        assert (await market.events(pid, "new"))[-1] == "g60.match.retracted.v1"


async def test_a_delivery_that_failed_after_the_engine_changed_is_reconciled_when_redelivered() -> (
    None
):
    market, store = await wide_market()
    market.svc.proposals.inline = 10**6  # every project reconciled on the event path
    real = market.store.insert
    failed = []

    async def insert_failing_once(collection: str, doc: Any, events: Any = None) -> None:
        if collection == "offer_views" and not failed:
            failed.append(doc["_id"])
            raise ConnectionError("the store went away")
        await real(collection, doc, events)

    market.store.insert = insert_failing_once  # type: ignore[method-assign]
    data = offer_data("new", 1, pricing={"rate_bp": 300})
    event = Envelope(type="g60.offer.published.v1", source="/t", subject="new", data=data)
    with pytest.raises(ConnectionError):
        await market.funding(event)
    assert failed == ["new"]
    assert await market.svc.matches.get(match_id(PROJECTS[0], "new")) is None
    assert market.svc.engine.has_offer("new")  # the engine took it: a redelivery moves nothing

    await market.funding(event)  # the redelivery: the projects holding the offer reconciled
    for pid in PROJECTS:
        assert (await market.match(pid, "new")).status == "proposed"
        assert (await market.match(pid, "off-c")).status == "retracted"


async def test_a_failed_withdrawal_is_reconciled_when_redelivered() -> None:
    """The engine has removed the offer, so the redelivery's change moves nothing: the projects
    that held a match with it are reconciled all the same (the pairs it had displaced are
    proposed again). Before, they stayed without them until something else moved them."""
    market, store = await wide_market()
    await market.offer("new", pricing={"rate_bp": 300})  # first in all 12 top ks
    await market.svc.proposals.settling.settled()
    real = market.store.set_fields
    calls: list[str] = []

    async def second_write_fails(collection: str, *args: Any, **kw: Any) -> set[str]:
        calls.append(collection)
        if len(calls) == 2:  # the withdrawal's matches retracted; then the moved-back ones
            raise ConnectionError("the store went away")
        return await real(collection, *args, **kw)

    market.store.set_fields = second_write_fails  # type: ignore[method-assign]
    data = offer_data("new", market._v("new"), status="withdrawn", pricing={"rate_bp": 300})
    event = Envelope(type="g60.offer.withdrawn.v1", source="/t", subject="new", data=data)
    with pytest.raises(ConnectionError):
        await market.funding(event)
    assert (await market.match(PROJECTS[0], "off-c")).status == "retracted"  # not yet back
    assert not market.svc.engine.has_offer("new")  # a redelivery's change moves nothing

    await market.funding(event)  # the redelivery
    for pid in PROJECTS:
        assert (await market.match(pid, "new")).status == "retracted"
        assert (await market.match(pid, "off-c")).status == "proposed"
        assert (await market.events(pid, "off-c"))[-1] == "g60.match.proposed.v1"


async def test_the_allocations_flags_are_one_field_update_and_one_log_insert_per_batch() -> None:
    market, store = await wide_market()
    await market.svc.proposals.settling.settled()
    store.calls.clear()
    allocation = await market.svc.allocation.refresh()
    assert allocation is not None
    assert allocation.as_map()
    assert store.calls == {  # every flag of the batch at once, nothing read, nothing rewritten
        ("set_fields", "matches"): 1,
        ("insert_many", "match_decisions"): 1,  # the allocated decisions, beside the matches
    }
    audit = market.svc.proposals.audit
    assert audit is not None
    for pid, oid in allocation.as_map().items():
        match = await market.match(pid, oid)
        assert match.allocated and match.allocated_as_of == allocation.market_version
        assert match.version == 2  # bumped: a compare-and-set that read before loses
        decisions = await audit.decisions(match)
        assert [d.kind for d in decisions] == ["proposed", "allocated"]
        assert decisions[-1].market_version == allocation.market_version
        assert decisions[-1].enterprise_view == match.enterprise_view


async def test_the_read_model_validates_a_view_once_and_again_when_it_changes() -> None:
    market = Market()
    await market.enterprise()
    await market.project("prj-1")
    read = market.svc.read
    first = await read.project("prj-1")
    assert first is not None and first is await read.project("prj-1")  # not validated again
    newer = ProjectSnapshot.model_validate(
        {**first.model_dump(mode="json"), "version": first.version + 1, "amount_cny": 7_000_000}
    )
    assert await read.keep(read.projects, newer, False)
    now = await read.project("prj-1")
    assert now is not None and now is not first
    assert (now.version, now.amount_cny) == (first.version + 1, 7_000_000)


async def test_a_new_matchs_decisions_share_its_breakdowns_without_a_copy() -> None:
    market = Market()
    await market.enterprise()
    await market.offer("off-1")
    await market.project("prj-1")
    match = await market.match("prj-1", "off-1")
    (decision,) = match.decisions
    assert decision.enterprise_view is None and decision.funder_view is None  # shared
    (record,) = match.records()
    assert record.enterprise_view == match.enterprise_view and record.enterprise_view
    assert record.funder_view == match.funder_view and record.funder_view


async def test_a_writer_that_read_a_match_before_its_flag_loses_its_compare_and_set() -> None:
    market, store = await wide_market()
    await market.svc.proposals.settling.settled()
    inner = store.inner
    set_fields = inner.set_fields
    read: list[dict[str, Any]] = []

    async def racing(collection: str, changes: Any, unless: str | None = None, **kw: Any) -> Any:
        if collection == "matches" and not read:  # another writer reads a match first
            doc = await inner.get(collection, next(iter(changes)))
            assert doc is not None and not doc["allocated"]
            read.append(doc)
        return await set_fields(collection, changes, unless, **kw)

    inner.set_fields = racing  # type: ignore[method-assign]
    allocation = await market.svc.allocation.refresh()
    assert allocation is not None and read
    (doc,) = read
    with pytest.raises(VersionConflict):  # its save would have undone the flag
        await inner.update("matches", {**doc, "reason": "late"}, doc["version"])
    stored = await inner.get("matches", doc["_id"])
    assert stored is not None and stored["allocated"] and stored["version"] == doc["version"] + 1
    assert stored["outbox"] == doc["outbox"] and stored["reason"] is None  # the rest as it was
    for pid, oid in allocation.as_map().items():
        assert (await market.match(pid, oid)).allocated


async def test_a_match_already_flagged_so_is_left_as_it_is() -> None:
    market, store = await wide_market()
    await market.svc.proposals.settling.settled()
    first = await market.svc.allocation.refresh()
    assert first is not None
    pid, oid = next(iter(first.as_map().items()))
    before = await market.store.get("matches", match_id(pid, oid))
    assert before is not None and before["allocated"]
    market.svc.proposals.flagged = None  # the same allocation again, on a map seeded empty
    market.svc.proposals.allocated = {}
    assert await market.svc.proposals.flag(first) == len(first.as_map())
    after = await market.store.get("matches", match_id(pid, oid))
    assert after == before  # `unless`: no write, no version bump
