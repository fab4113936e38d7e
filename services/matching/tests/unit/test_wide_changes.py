"""An offer event that touches many projects: what moved in or out of their top k is stored on
the event path, the rest (ranks shifted, breakdowns of the changed offer's pairs) once the
background settling has run — and then the store holds exactly what reconciling every project
on the event path stores (`inline`), and what the engine proposes."""

from __future__ import annotations

from typing import Any

from g60_chassis.batches import unsent
from g60_chassis.envelope import Envelope
from matching.domain.match import match_id
from matching.entrypoints.consumer import funding_events
from services.matching.tests.unit.test_use_cases import Market, offer_data

PROJECTS = [f"prj-{i:02d}" for i in range(12)]
KEPT = ("status", "rank", "score", "allocated", "enterprise_view", "funder_view", "outbox")


async def _markets() -> tuple[Market, Market]:
    """The same market twice: one reconciles every project on the event path, one only what
    moved (any change past zero projects goes the wide way)."""
    inline, wide = Market(), Market()
    inline.svc.proposals.inline = 10**6
    wide.svc.proposals.inline = 0
    for m in (inline, wide):
        await m.enterprise()
        for id, rate in (("off-a", 420), ("off-b", 400), ("off-c", 440), ("off-d", 445)):
            await m.offer(id, pricing={"rate_bp": rate})
        for id in PROJECTS:
            await m.project(id)
        await m.svc.proposals.settling.settled()
    return inline, wide


async def _stored(m: Market) -> dict[str, dict[str, Any]]:
    docs = await m.store.find("matches", None, limit=10**6)
    events = await unsent(m.store, "matches")  # its insert's batch, then its own outbox
    return {
        d["_id"]: {
            k: [e["type"] for e in events.get(d["_id"], [])] if k == "outbox" else d[k]
            for k in KEPT
        }
        for d in docs
    }


async def _agree(inline: Market, wide: Market) -> None:
    await wide.svc.proposals.settling.settled()
    assert wide.svc.proposals.settling.due == 0
    assert await _stored(wide) == await _stored(inline)
    for pid in PROJECTS:  # and both hold what the engine proposes, ranks included
        wanted = wide.svc.engine.proposals_for_projects([pid], breakdowns=True, allocated=False)
        for p in wanted[pid]:
            match = await wide.match(pid, p.offer_id)
            assert (match.status, match.rank, match.score) == ("proposed", p.rank, p.score)
            assert match.enterprise_view == p.enterprise_view
        stored = await wide.svc.matches.every({"project_id": pid})
        held = wide.svc.proposals.allocated.get(pid)  # kept beyond the top k too
        assert {m.offer_id for m in stored if m.status == "proposed"} == {
            p.offer_id for p in wanted[pid]
        } | ({held} if held else set())


async def test_a_new_best_offer_is_proposed_to_every_project_on_the_event_path() -> None:
    inline, wide = await _markets()
    await _agree(inline, wide)
    for m in (inline, wide):
        await m.offer("new", pricing={"rate_bp": 300})

    # before the background ran: the new pair proposed with its breakdowns, the rest left
    # for the settling: the pair it pushed out (it still fits) and the shifted ranks
    assert wide.svc.proposals.settling.due == len(PROJECTS)
    for pid in PROJECTS:
        new = await wide.match(pid, "new")
        assert new.status == "proposed" and new.rank == 1 and new.enterprise_view
        assert await wide.events(pid, "new") == ["g60.match.proposed.v1"]
        out = await wide.match(pid, "off-c")  # third of the three before; now fourth
        assert out.status == "proposed"  # retracted by the settling's sweep
        assert (await wide.match(pid, "off-b")).rank == 1  # not shifted yet: the background's
    await _agree(inline, wide)
    assert (await wide.match(PROJECTS[0], "off-b")).rank == 2
    for pid in PROJECTS:
        assert (await wide.match(pid, "off-c")).status == "retracted"
        assert await wide.events(pid, "off-c") == [
            "g60.match.proposed.v1",
            "g60.match.retracted.v1",
        ]


async def test_a_changed_offer_and_its_withdrawal_settle_to_what_reconciling_all_stores() -> None:
    inline, wide = await _markets()
    for m in (inline, wide):
        await m.offer("new", pricing={"rate_bp": 300})
    await _agree(inline, wide)
    for m in (inline, wide):  # its score moves: second now, its breakdowns recomputed
        await m.offer("new", pricing={"rate_bp": 410})
    views = (await wide.match(PROJECTS[0], "new")).enterprise_view
    await _agree(inline, wide)
    assert (await wide.match(PROJECTS[0], "new")).rank == 2
    assert (await wide.match(PROJECTS[0], "new")).enterprise_view == views

    for m in (inline, wide):
        await m.offer("new", status="withdrawn")
    for pid in PROJECTS:  # the pushed out pair is proposed again on the event path
        assert (await wide.match(pid, "off-c")).status == "proposed"
        assert (await wide.match(pid, "new")).status == "retracted"
    await _agree(inline, wide)
    events = (await unsent(wide.store, "matches"))[match_id(PROJECTS[0], "off-c")]
    assert [e["type"] for e in events][-2:] == [
        "g60.match.retracted.v1",
        "g60.match.proposed.v1",
    ]


async def test_the_allocated_pair_pushed_out_of_the_top_k_is_not_retracted() -> None:
    inline, wide = Market(), Market()
    inline.svc.proposals.inline = 10**6
    wide.svc.proposals.inline = 0
    for m in (inline, wide):
        await m.enterprise()
        for id, rate, deals in (("off-a", 420, 4), ("off-b", 400, 4), ("off-c", 440, 40)):
            await m.offer(id, pricing={"rate_bp": rate}, max_deals=deals)
        for id in PROJECTS:
            await m.project(id)
        await m.svc.allocation.refresh()
    held = {p: o for p, o in wide.svc.proposals.allocated.items() if o == "off-c"}
    assert len(held) == 4  # four projects hold their third offer

    for m in (inline, wide):
        await m.offer("new", pricing={"rate_bp": 300})  # the allocation is not run again
    await _agree(inline, wide)
    for pid in PROJECTS:
        out = await wide.match(pid, "off-c")  # fourth now: only the allocated ones stay
        assert (out.status == "proposed") == (pid in held), pid
        assert out.allocated == (pid in held)
    assert (await wide.match(next(iter(held)), "off-c")).rank == 4


async def test_a_crash_before_the_settling_finished_is_settled_by_the_next_start() -> None:
    inline, wide = await _markets()
    for m in (inline, wide):
        await m.offer("new", pricing={"rate_bp": 300})
    assert wide.svc.proposals.settling.due == len(PROJECTS)
    view = await wide.store.get("offer_views", "new")
    assert view is not None and view["pending"]  # marked until the settling is done
    await wide.svc.proposals.settling.stop()  # the crash: what was due was in memory only

    restarted = Market()
    restarted.store = wide.store
    restarted.app = wide.another_process()
    restarted.svc = restarted.app.service
    await restarted.svc.rebuild()  # the catch-up reconciles every project of the marked offer
    await _agree(inline, restarted)
    view = await wide.store.get("offer_views", "new")
    assert view is not None and not view["pending"]


async def test_the_mark_is_cleared_once_the_settling_is_done() -> None:
    inline, wide = await _markets()
    for m in (inline, wide):
        await m.offer("new", pricing={"rate_bp": 300})
    await _agree(inline, wide)
    view = await wide.store.get("offer_views", "new")
    assert view is not None and not view["pending"]
    for id in ("off-a", "off-b", "off-c", "off-d"):  # narrow changes were never marked
        view = await wide.store.get("offer_views", id)
        assert view is not None and not view["pending"], id


def _calls(market: Market) -> tuple[list[str], list[str]]:
    """The ids of the matches read by id, and of those asked to be inserted, from now on (by
    any service on this store)."""
    store, reads, inserts = market.store, [], []
    get, states, insert_many = store.get, store.states, store.insert_many

    async def reading(collection: str, id: str) -> Any:
        if collection == "matches":
            reads.append(id)
        return await get(collection, id)

    async def reading_raw(collection: str, ids: list[str]) -> Any:
        if collection == "matches":
            reads.extend(ids)
        return await states(collection, ids)

    async def inserting(collection: str, docs: Any) -> Any:
        if collection == "matches":
            inserts.extend(doc["_id"] for doc, _ in docs)
        return await insert_many(collection, docs)

    store.get, store.states = reading, reading_raw  # type: ignore[method-assign]
    store.insert_many = inserting  # type: ignore[method-assign]
    return reads, inserts


async def test_a_new_offer_s_pairs_are_not_read_a_redelivered_one_s_are() -> None:
    """A new offer's first delivery creates its view: none of its matches can be stored yet
    (none is made before its pair's views), so only the displaced pairs are read. A
    redelivery finds the view: to an engine that had not seen the offer (a process started
    before the first delivery stored it), its matches are read and found, not made again.
    The pairs it pushed out are not read either: the settling retracts them."""
    market = Market()
    await market.wide(PROJECTS)
    later = market.another_process()
    await later.service.rebuild()  # loaded before the offer arrives
    later.service.proposals.inline = 0
    reads, inserts = _calls(market)
    new = {match_id(p, "new") for p in PROJECTS}
    data = offer_data("new", 1, pricing={"rate_bp": 300})  # first in all 12 top ks
    event = Envelope(type="g60.offer.published.v1", source="/t", subject="new", data=data)
    await market.funding(event)
    assert not reads  # neither its pairs nor the displaced (the settling's)
    assert set(inserts) == new
    await market.svc.proposals.settling.settled()
    for pid in PROJECTS:
        assert (await market.match(pid, "new")).status == "proposed"
        assert (await market.match(pid, "off-c")).status == "retracted"

    reads.clear()
    inserts.clear()
    await funding_events(later.service)(event)  # the redelivery, elsewhere
    assert new <= set(reads)
    assert not inserts  # found: none of them made again
    for pid in PROJECTS:
        match = await later.service.matches.get(match_id(pid, "new"))
        assert match is not None and match.status == "proposed" and match.version == 1
        events = (await unsent(market.store, "matches"))[match.id]
        assert [e["type"] for e in events] == ["g60.match.proposed.v1"]  # not sent twice
