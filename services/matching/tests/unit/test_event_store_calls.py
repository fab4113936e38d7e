"""What the matcher asks of its store per offer event and per allocation (issues 8 and 9): the
changed matches of a batch go in one write (retractions included), the offer's view is written
once even when the change is wide (marked `pending` in that write), the allocation's flags of a
batch are one read round and one write, and the read model validates a view once."""

from __future__ import annotations

from typing import Any

import pytest

from g60_chassis.envelope import Envelope
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


async def test_a_wide_offer_event_retracts_in_one_write_and_writes_its_view_once() -> None:
    market, store = await wide_market()
    await market.offer("new", pricing={"rate_bp": 300})  # first in all 12 top ks

    writes = {k: n for k, n in store.calls.items() if k[0] not in ("get", "find")}
    assert writes == {
        ("insert", "offer_views"): 1,  # once, marked pending (it was written twice)
        ("insert_many", "decision_inputs"): 1,
        ("insert_many", "matches"): 1,  # the 12 new pairs
        ("insert", "_outbox_matches"): 1,  # their events
        ("update_many", "matches"): 1,  # the 12 pushed out, retracted together
    }
    view = await market.store.get("offer_views", "new")
    assert view is not None and view["pending"]
    for pid in PROJECTS:  # what the event path owes is there: new pair in, pushed out pair out
        assert (await market.match(pid, "new")).status == "proposed"
        out = await market.match(pid, "off-c")
        assert out.status == "retracted"
        assert await market.events(pid, "off-c") == [
            "g60.match.proposed.v1",
            "g60.match.retracted.v1",
        ]
    await market.svc.proposals.settling.settled()
    view = await market.store.get("offer_views", "new")
    assert view is not None and not view["pending"]

    store.calls.clear()  # a changed offer: its view rewritten once too
    await market.offer("new", pricing={"rate_bp": 410})
    assert store.calls[("update", "offer_views")] == 1
    assert ("update", "matches") not in store.calls


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


async def test_the_allocations_flags_are_one_read_round_and_one_write_per_batch() -> None:
    market, store = await wide_market()
    await market.svc.proposals.settling.settled()
    store.calls.clear()
    allocation = await market.svc.allocation.refresh()
    assert allocation is not None
    moved = len(allocation.as_map())
    assert moved > 0
    assert store.calls[("update_many", "matches")] == 1  # every flag of the batch at once
    assert ("update", "matches") not in store.calls
    assert store.calls[("get", "matches")] == moved  # read concurrently, one round
    assert store.calls[("insert_many", "decision_inputs")] <= 1
    for pid, oid in allocation.as_map().items():
        match = await market.match(pid, oid)
        assert match.allocated and [d.kind for d in match.records()][-1] == "allocated"
        assert match.records()[-1].enterprise_view == match.enterprise_view


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


async def test_a_flag_whose_write_lost_a_race_is_read_again_and_written() -> None:
    market, store = await wide_market()
    await market.svc.proposals.settling.settled()
    inner = store.inner
    write = inner.update_many
    raced: list[str] = []

    async def racing(collection: str, updates: Any) -> set[str]:
        if collection == "matches" and not raced:  # another writer saves one match first
            doc = await inner.get(collection, updates[0][0]["_id"])
            assert doc is not None
            await inner.update(collection, doc, doc["version"])
            raced.append(doc["_id"])
        return await write(collection, updates)

    inner.update_many = racing  # type: ignore[method-assign]
    store.calls.clear()
    allocation = await market.svc.allocation.refresh()
    assert allocation is not None and raced
    assert store.calls[("update_many", "matches")] == 2  # the batch, then the lost flag again
    for pid, oid in allocation.as_map().items():
        assert (await market.match(pid, oid)).allocated
