"""Statistics and the decision log on fakes: events in through the consumers, figures and
decision records out; a decision replays from its recorded inputs, and a changed input shows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from g60_chassis.errors import Forbidden
from g60_chassis.principal import Principal
from g60_chassis.store import Doc
from g60_contracts.audit import DecisionOut
from g60_contracts.enums import Role
from matching.adapters.engine import EngineTranslator, engine_version, new_engine
from matching.domain import stats
from matching.domain.audit import differences
from matching.domain.match import Match
from matching.service.audit import DecisionLog, replay
from matching.service.stats import Stats
from services.matching.tests.unit.factories import decision
from services.matching.tests.unit.test_use_cases import OPERATOR, T0, Market

ENTERPRISE = Principal("e", Role.enterprise, "ent-1")


def _stats(m: Market) -> Stats:
    svc = m.svc
    return Stats(svc.matches, svc.read, svc.engine, lambda: T0)


def _log(m: Market) -> DecisionLog:
    log = m.svc.proposals.audit
    assert log is not None
    return log


async def _corridor() -> Market:
    m = Market()
    await m.enterprise()
    await m.offer("off-a")
    await m.offer("off-b", ticket_min_cny=100, ticket_max_cny=1_000)  # too small: never eligible
    await m.project("prj-1")
    await m.project("prj-2", amount_cny=10, min_amount_cny=None, instruments=["equity"])
    return m


async def test_stats_count_needs_proposals_and_why_not_by_city_and_instrument():
    m = await _corridor()
    s = await _stats(m).figures(OPERATOR)
    assert (s.totals.needs, s.totals.proposals) == (2, 1)
    assert s.totals.requested_cny == 20_000_010
    assert s.totals.matched_cny == 20_000_000  # only prj-1 got a proposal
    assert [(r.key, r.needs, r.proposals) for r in s.by_city] == [("shanghai", 2, 1)]
    assert [(r.key, r.needs) for r in s.by_instrument] == [("credit_loan", 1)]
    assert (s.open_needs, s.no_eligible_offer, s.no_eligible_share) == (2, 1, 0.5)
    assert {w.rule for w in s.why_not} >= {"instrument"}
    assert all(w.needs == 1 for w in s.why_not)
    assert [c.offer_id for c in s.capacity] == ["off-a", "off-b"]
    assert s.to_first_proposal.count == 1


async def test_stats_follow_the_funnel_to_close_and_capacity_used():
    m = await _corridor()
    match = await m.match("prj-1", "off-a")
    later = T0 + timedelta(hours=30)
    match.accept("enterprise", later)
    match.accept("funder", later)
    match.reserved(later)
    match.close(15_000_000, later)
    await m.svc.matches.save(match)
    await m.offer("off-a", remaining_cny=480_000_000)
    s = await _stats(m).figures(OPERATOR)
    t = s.totals
    assert (t.agreed, t.reserved, t.closed, t.funded_cny) == (1, 1, 1, 15_000_000)
    assert s.to_close.median_hours == 30.0
    used = {c.offer_id: c.used_cny for c in s.capacity}
    assert used["off-a"] == 20_000_000


async def test_an_enterprise_sees_its_own_needs_and_a_partner_none():
    m = await _corridor()
    await m.enterprise("ent-2")
    await m.project("prj-9", enterprise_id="ent-2")
    mine = await _stats(m).figures(ENTERPRISE)
    assert mine.scope == "enterprise:ent-1"
    assert mine.totals.needs == 2
    corridor = await _stats(m).figures(OPERATOR)
    assert corridor.totals.needs == 3
    with pytest.raises(Forbidden):
        await _stats(m).figures(Principal("p", Role.partner))


async def test_since_leaves_out_older_needs():
    m = await _corridor()
    s = await _stats(m).figures(OPERATOR, since=T0 + timedelta(seconds=1))
    assert s.totals.needs == 0
    naive = await _stats(m).figures(OPERATOR, since=datetime(2026, 11, 26))  # read as UTC
    assert naive.totals.needs == 2


def test_percentiles_interpolate_like_numpy():
    assert stats.percentile([], 0.5) is None
    assert stats.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert stats.percentile([0.0, 10.0], 0.9) == 9.0


def test_a_match_declined_after_agreeing_still_counts_as_agreed():
    t = datetime(2026, 1, 1, tzinfo=UTC)
    d = stats.Deal("p", "f", "equity", "declined", "agreed", t, t, None)
    assert d.reached(stats.AGREED) and not d.reached(stats.RESERVED)


async def test_each_proposal_is_recorded_with_versions_and_replays():
    m = await _corridor()
    match = await m.match("prj-1", "off-a")
    record = await _log(m).record(OPERATOR, match)
    (proposed,) = [d for d in record.decisions if d.kind == "proposed"]
    assert proposed.engine_version == engine_version()
    assert (proposed.project_version, proposed.offer_version) == (1, 1)
    assert proposed.market_version > 0
    assert proposed.enterprise_view == match.enterprise_view
    assert proposed.funder_view == match.funder_view
    assert proposed.project is not None and proposed.project.id == "prj-1"
    assert replay(proposed, _factory, EngineTranslator()) == []


async def test_an_offer_update_keeps_the_inputs_the_decision_saw():
    m = await _corridor()
    await m.offer("off-a", ticket_max_cny=500_000_000)  # version 2; prj-1's proposal stays
    match = await m.match("prj-1", "off-a")
    record = await _log(m).record(OPERATOR, match)
    first = record.decisions[0]
    assert first.offer_version == 1 and first.offer is not None
    assert first.offer.version == 1
    assert replay(first, _factory, EngineTranslator()) == []


async def test_a_replay_reports_where_the_recorded_decision_differs():
    m = await _corridor()
    record = await _log(m).record(OPERATOR, await m.match("prj-1", "off-a"))
    d = record.decisions[0]
    tampered = DecisionOut.model_validate({**d.model_dump(), "score": d.score + 0.1})
    assert [x.split(":")[0] for x in replay(tampered, _factory, EngineTranslator())] == ["score"]
    assert d.offer is not None
    refused = d.offer.model_copy(update={"ticket_min_cny": 100, "ticket_max_cny": 1_000})
    out = replay(d.model_copy(update={"offer": refused}), _factory, EngineTranslator())
    assert out and out[0].startswith("eligible")


async def test_parties_see_decisions_without_the_other_sides_inputs():
    m = await _corridor()
    match = await m.match("prj-1", "off-a")
    record = await _log(m).record(ENTERPRISE, match)
    assert record.decisions and all(d.project is None for d in record.decisions)
    assert replay(record.decisions[0], _factory, EngineTranslator()) == [
        "inputs: not recorded, cannot replay"
    ]


async def test_an_allocation_decision_is_recorded_beside_the_match_and_replays():
    m = await _corridor()
    await m.svc.allocation.refresh()
    match = await m.match("prj-1", "off-a")
    assert match.allocated and [d.kind for d in match.decisions] == ["proposed"]  # beside it
    record = await _log(m).record(OPERATOR, match)
    assert [d.kind for d in record.decisions] == ["proposed", "allocated"]
    allocated = record.decisions[-1]
    assert allocated.market_version == match.allocated_as_of
    assert allocated.enterprise_view == match.enterprise_view and allocated.project is not None
    assert replay(allocated, _factory, EngineTranslator()) == []
    flagged = m.svc.proposals.flagged
    assert flagged is not None
    m.svc.proposals.flagged, m.svc.proposals.allocated = None, {}
    await m.svc.proposals.flag(flagged)  # the same allocation flagged again (a seeded map)
    again = await _log(m).record(OPERATOR, await m.match("prj-1", "off-a"))
    assert [d.kind for d in again.decisions] == ["proposed", "allocated"]  # logged once


def test_differences_name_the_path_and_tolerate_quantisation():
    a = {"total": 0.5, "terms": [{"criterion": "cost", "score": 0.25}]}
    assert (
        differences(a, {"total": 0.5 + 1e-12, "terms": [{"criterion": "cost", "score": 0.25}]})
        == []
    )
    assert differences(a, {"total": 0.5, "terms": [{"criterion": "cost", "score": 0.3}]}) == [
        "terms[0].score: 0.25 != 0.3"
    ]


def _factory(as_of):  # type: ignore[no-untyped-def]
    return new_engine(as_of, 10)


async def test_a_pair_proposed_again_after_a_retraction_records_a_new_decision():
    m = await _corridor()
    await m.project("prj-1", instruments=["equity"])  # no longer fits off-a: retracted
    assert (await m.match("prj-1", "off-a")).status == "retracted"
    await m.project("prj-1", instruments=["credit_loan"])  # fits again
    match = await m.match("prj-1", "off-a")
    assert match.status == "proposed"
    record = await _log(m).record(OPERATOR, match)
    proposed = [d for d in record.decisions if d.kind == "proposed"]
    assert [d.project_version for d in proposed] == [1, 3]
    assert all(replay(d, _factory, EngineTranslator()) == [] for d in proposed)


def test_a_match_keeps_its_first_and_newest_decisions():
    m = Match.model_validate(
        {
            "id": "m",
            "project_id": "p",
            "offer_id": "o",
            "enterprise_id": "e",
            "funder_id": "f",
            "instrument": "equity",
            "amount_cny": 1,
            "created_at": T0,
            "updated_at": T0,
        }
    )
    for v in range(30):
        d = decision("allocated", v)
        m.record(d)
        m.record(d)  # once per id
    assert len(m.decisions) == 20
    assert [d.market_version for d in m.decisions][:2] == [0, 11]


async def test_a_need_proposed_to_many_offers_stores_its_inputs_once_each():
    # the matches of one need are made together: each input version goes to the store once,
    # not once per match (the others' inserts failed as duplicates, each with a read)
    m = Market(top_k=5)
    await m.enterprise()
    for i in range(5):
        await m.offer(f"off-{i}")
    inserts: list[str] = []
    insert, insert_many = m.store.insert, m.store.insert_many

    async def counting(collection: str, doc: dict[str, object], events: object = None) -> None:
        if collection == "decision_inputs":
            inserts.append(str(doc["_id"]))
            await asyncio.sleep(0.001)  # a real store answers later: the others run meanwhile
        await insert(collection, doc, events)  # type: ignore[arg-type]

    async def counting_many(collection: str, docs: list[tuple[Doc, list[Doc]]]) -> set[str]:
        if collection == "decision_inputs":  # the memory store's inserts in one call
            inserts.extend(str(doc["_id"]) for doc, _ in docs)
            await asyncio.sleep(0.001)
        return await insert_many(collection, docs)

    m.store.insert = counting  # type: ignore[method-assign]
    m.store.insert_many = counting_many  # type: ignore[method-assign]
    await m.project("prj-1")
    assert len(await m.svc.matches.every({"project_id": "prj-1"})) == 5
    assert len(inserts) == len(set(inserts))
    assert sum(i.startswith("project") for i in inserts) == 1
    assert sum(i.startswith("offer") for i in inserts) == 5
