"""The engine's API as the matching service uses it: deltas for events, proposals on both
sides, explanations, advice, the allocation flag, and moving the "as of" day."""

from __future__ import annotations

from datetime import date

import pytest

from matching.domain.engine import MatchEngine
from services.matching.tests.unit.factories import AS_OF, code, engine, offer, project


def cheap(id: str, rate: int, **kw: object) -> object:
    return offer(id, pricing={"rate_bp": rate}, **kw)


def test_a_new_project_gets_its_top_k_as_added_pairs() -> None:
    e = engine(cheap("o1", 300), cheap("o2", 350), cheap("o3", 400), top_k=2)
    delta = e.upsert_project(project())
    assert delta.added == [("prj-1", "o1"), ("prj-1", "o2")]
    assert delta.removed == delta.changed == []
    ranked = e.proposals_for_project("prj-1")
    assert [(p.offer_id, p.rank) for p in ranked] == [("o1", 1), ("o2", 2)]
    assert ranked[0].score > ranked[1].score


def test_upserting_the_same_project_again_changes_nothing() -> None:
    e = engine(cheap("o1", 300), project())
    assert not e.upsert_project(project())


def test_a_changed_project_reports_changed_scores() -> None:
    e = engine(cheap("o1", 300), cheap("o2", 350), project())
    delta = e.upsert_project(project(enterprise_kw={"debt_ratio": 0.1}))
    assert sorted(delta.changed) == [("prj-1", "o1"), ("prj-1", "o2")]
    assert delta.added == delta.removed == []


def test_a_better_offer_displaces_the_last_proposal() -> None:
    e = engine(cheap("o2", 350), cheap("o3", 400), project(), top_k=2)
    delta = e.upsert_offer(cheap("o1", 300))
    assert delta.added == [("prj-1", "o1")] and delta.removed == [("prj-1", "o3")]
    assert delta.projects == {"prj-1"} and delta.offers == {"o1", "o3"}


def test_a_withdrawn_offer_is_retracted_and_the_next_one_moves_up() -> None:
    e = engine(cheap("o1", 300), cheap("o2", 350), cheap("o3", 400), project(), top_k=2)
    delta = e.remove_offer("o1")
    assert delta.removed == [("prj-1", "o1")] and delta.added == [("prj-1", "o3")]
    assert e.remove_offer("o1") == e.remove_offer("nope")  # empty deltas
    assert "o1" not in e.offer_models


def test_a_withdrawn_project_retracts_its_proposals() -> None:
    e = engine(cheap("o1", 300), cheap("o2", 350), project())
    delta = e.remove_project("prj-1")
    assert sorted(delta.removed) == [("prj-1", "o1"), ("prj-1", "o2")]
    assert e.proposals_for_project("prj-1") == [] and e.proposals_for_offer("o1") == []


def test_capacity_changes_retract_and_restore() -> None:
    e = engine(cheap("o1", 300), project())
    assert e.set_capacity("o1", 5_000_000).removed == [("prj-1", "o1")]
    assert e.set_capacity("o1", 50_000_000).added == [("prj-1", "o1")]
    assert e.set_capacity("o1", 50_000_000, deals_taken=40).removed == [("prj-1", "o1")]
    assert not e.set_capacity("unknown", 1)


def test_proposals_for_an_offer_rank_its_projects() -> None:
    e = engine(
        cheap("o1", 300),
        project("p-shanghai"),
        project("p-jiaxing", enterprise_kw={"city": "jiaxing", "uscc": code(2)}),
    )
    ranked = e.proposals_for_offer("o1")
    assert [p.project_id for p in ranked] == ["p-shanghai", "p-jiaxing"]  # priority city
    assert ranked[0].funder_score > ranked[1].funder_score
    assert [p.project_id for p in e.proposals_for_offer("o1", limit=1)] == ["p-shanghai"]


def test_the_allocated_offer_is_marked_and_shown_even_beyond_the_top_k() -> None:
    # the enterprise prefers the quick, cheap loan; the combined score prefers the other
    quick = offer(
        "quick",
        pricing={"rate_bp": 300},
        decision_days=1,
        preferences={"priority_cities": ["jiaxing"]},
    )
    fond = offer(
        "fond",
        pricing={"rate_bp": 420},
        decision_days=40,
        sectors=["instruments_meters"],
        preferences={"priority_cities": ["shanghai"], "priority_sectors": ["instruments_meters"]},
    )
    e = engine(quick, fond, project(), top_k=1)
    assert e.allocation_map() == {"prj-1": "quick"}
    shown = e.proposals_for_project("prj-1")
    assert [(p.offer_id, p.rank, p.allocated) for p in shown] == [
        ("fond", 1, False),
        ("quick", 2, True),
    ]
    x = e.explain("prj-1", "quick")
    assert x.allocated and x.rank is None  # allocated, though not among the top 1


def test_explain_names_unknown_ids() -> None:
    e = engine(offer(), project())
    with pytest.raises(KeyError, match="unknown project"):
        e.explain("nope", "off-1")
    with pytest.raises(KeyError, match="unknown offer"):
        e.explain("prj-1", "nope")


def test_advice_names_single_changes_with_their_gain() -> None:
    needs_cert = [
        offer(f"hte-{i}", requirements={"qualifications_all": ["little_giant"]}) for i in range(3)
    ]
    big = [offer(f"big-{i}", ticket_min_cny=1_000_000, ticket_max_cny=15_000_000) for i in range(2)]
    equity = offer("eq", instrument="equity", pricing={"max_equity_share": 0.1})
    e = engine(*needs_cert, *big, equity, project(instruments=["credit_loan"], min_amount_cny=None))
    advice = {a.change: a for a in e.advice("prj-1")}
    cert = advice["obtain little_giant certification"]
    assert cert.gain == 3 and cert.offer_ids == ("hte-0", "hte-1", "hte-2") and cert.lost == 0
    assert cert.detail == {"kind": "qualification", "value": "little_giant"}
    assert advice["accept a minimum of 15,000,000 CNY"].gain == 2
    assert advice["also accept equity"].gain == 1
    assert next(iter(advice)) == "obtain little_giant certification"  # largest gain first


def test_advice_renews_a_lapsed_qualification() -> None:
    lapsed = {"qualifications": [{"kind": "high_tech_enterprise", "expires_on": "2026-01-01"}]}
    e = engine(offer(), project(enterprise_kw=lapsed))
    assert next(a.change for a in e.advice("prj-1")) == "renew high_tech_enterprise certification"


def test_load_is_the_batch_path_with_the_same_result() -> None:
    items = [cheap("o1", 300), cheap("o2", 350), project("a"), project("b", amount_cny=25_000_000)]
    batch = MatchEngine(AS_OF, top_k=1)
    delta = batch.load(
        [x for x in items if not hasattr(x, "funder_id")],
        [x for x in items if hasattr(x, "funder_id")],
    )
    assert sorted(delta.added) == [("a", "o1"), ("b", "o1")]
    one_by_one = engine(*items, top_k=1)
    for pid in ("a", "b"):
        assert batch.proposals_for_project(pid) == one_by_one.proposals_for_project(pid)
    assert batch.allocation() == one_by_one.allocation()


def test_moving_the_day_expires_qualifications_and_offers() -> None:
    e = engine(offer(valid_until="2027-06-30"), project())
    assert e.advance(date(2027, 7, 1)).removed == [("prj-1", "off-1")]
    assert e.explain("prj-1", "off-1").reasons[0]["rule"] == "validity"
    e.advance(AS_OF)
    assert [p.offer_id for p in e.proposals_for_project("prj-1")] == ["off-1"]


def test_the_allocation_is_cached_until_something_changes() -> None:
    e = engine(offer(), project())
    first = e.allocation()
    assert e.allocation() is first
    e.upsert_project(project("prj-2"))
    assert e.allocation() is not first and len(e.allocation().assignments) == 2


def test_offers_of_equal_score_rank_by_id_when_one_enters_the_lists() -> None:
    """Copies of one offer tie in every project that lists the original: each enters below
    the lower ids and above the higher, as if the lists were built from scratch."""
    projects = [project(f"prj-{i}") for i in range(3)]
    e = engine(cheap("o-b", 300), cheap("o-d", 300), *projects, top_k=4)
    for id in ("o-c", "o-a", "o-e"):  # o-e would be fifth: beyond the top k
        delta = e.upsert_offer(cheap(id, 300))
        entered = {f"prj-{i}" for i in range(3)} if id != "o-e" else set()
        assert {pid for pid, _ in delta.added} == entered
    fresh = engine(*(cheap(i, 300) for i in ("o-a", "o-b", "o-c", "o-d", "o-e")), *projects)
    for i in range(3):
        got = [p.offer_id for p in e.proposals_for_project(f"prj-{i}", breakdowns=False)]
        assert got == ["o-a", "o-b", "o-c", "o-d"]
        want = fresh.proposals_for_project(f"prj-{i}", breakdowns=False)
        assert got == [p.offer_id for p in want[:4]]


def test_proposals_of_chosen_pairs_are_those_of_the_whole_top_k() -> None:
    e = engine(
        cheap("o1", 300), cheap("o2", 350), cheap("o3", 400), project("p1"), project("p2"), top_k=3
    )
    whole = e.proposals_for_projects(["p1", "p2"], breakdowns=False, allocated=False)
    only = {"p1": {"o2", "o9"}, "p2": set[str]()}
    some = e.proposals_for_projects(["p1", "p2"], breakdowns=False, allocated=False, only=only)
    assert some == {"p1": [p for p in whole["p1"] if p.offer_id == "o2"]}
    assert some["p1"][0].rank == 2
