"""Both sides' scores: one test per term, unknown data neutral and flagged, weight overrides,
and the same bits whichever way a pair is scored."""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import pytest

from matching.domain import explanations, scoring
from matching.domain.columns import OfferTable, ProjectTable
from services.matching.tests.unit.factories import AS_OF, engine, offer, project


def views(p: Any, o: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    x = engine(p, o).explain(p.id, o.id)
    assert x.eligible, x.reasons
    return x.enterprise_view, x.funder_view


def term(view: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in view["terms"] if t["criterion"] == name)


def e_term(name: str, p: Any = None, o: Any = None) -> dict[str, Any]:
    return term(views(p or project(), o or offer())[0], name)


def f_term(name: str, p: Any = None, o: Any = None) -> dict[str, Any]:
    return term(views(p or project(), o or offer())[1], name)


# ---- the enterprise's view ---------------------------------------------------------------------


def test_cost_of_debt_against_the_projects_ceiling() -> None:
    t = e_term("cost")  # 380 bp against a 450 bp ceiling
    assert t["score"] == pytest.approx(1 - 380 / 450, abs=1e-4) and t["note"] == "380 bp a year"
    assert e_term("cost", project(max_cost_bp=None))["score"] == pytest.approx(0.62)


def test_cost_of_equity_is_the_stake_against_the_dilution_accepted() -> None:
    o = offer(instrument="equity", pricing={"max_equity_share": 0.05})
    assert e_term("cost", project(max_dilution=0.2), o)["score"] == pytest.approx(0.75)
    assert e_term("cost", project(max_dilution=None), o)["score"] == pytest.approx(0.9)


def test_cost_unknown_is_neutral_and_flagged() -> None:
    t = e_term("cost", o=offer(pricing={}))
    assert t == {
        "criterion": "cost",
        "score": None,
        "weight": 0.3,
        "unknown": True,
        "note": "data missing: counted as neutral 0.5",
    }


def test_unknown_counts_as_neutral_in_the_total_never_as_agreement() -> None:
    known, _ = views(project(), offer(pricing={"rate_bp": 0}))
    unknown, _ = views(project(), offer(pricing={}))
    assert term(known, "cost")["score"] == 1.0
    assert unknown["total"] == pytest.approx(known["total"] - 0.3 * 0.5, abs=1e-4)


def test_speed_falls_with_days_to_decide() -> None:
    assert e_term("speed", o=offer(decision_days=0))["score"] == 1.0
    assert e_term("speed", o=offer(decision_days=30))["score"] == 0.5
    assert e_term("speed", o=offer(decision_days=None))["unknown"]


def test_amount_coverage() -> None:
    p = project(amount_cny=40_000_000, min_amount_cny=20_000_000)
    assert e_term("amount", p)["score"] == 0.75  # 30 m of 40 m
    assert e_term("amount")["score"] == 1.0


def test_instrument_preference_follows_the_projects_order() -> None:
    p = project(instruments=["equity", "leasing", "credit_loan"])
    assert e_term("instrument", p)["score"] == pytest.approx(1 / 3, abs=1e-4)
    assert e_term("instrument", project(instruments=["credit_loan"]))["score"] == 1.0


def test_collateral_required_costs_the_enterprise() -> None:
    o = offer(requirements={"collateral_required": ["ip"]})
    assert e_term("collateral", o=o)["score"] == 0.5
    assert e_term("collateral")["score"] == 1.0


# ---- the funder's view -------------------------------------------------------------------------


def test_sector_fit() -> None:
    assert f_term("sector")["score"] == 0.5  # open to all sectors, no priority
    assert f_term("sector", o=offer(sectors=["instruments_meters"]))["score"] == 0.75
    prio = {"priority_sectors": ["instruments_meters"]}
    assert f_term("sector", o=offer(preferences=prio))["score"] == 1.0
    other = {"priority_sectors": ["biomedicine"]}
    assert f_term("sector", o=offer(preferences=other))["score"] == 0.4


def test_stage_fit_is_highest_in_the_middle_of_the_offers_stages() -> None:
    o = offer(stages=["angel", "series_a", "series_b"])
    assert f_term("stage", o=o)["score"] == 1.0
    assert f_term("stage", project(stage="series_b"), o)["score"] == 0.5
    assert f_term("stage", o=offer(stages=[]))["score"] == 0.5


def test_priority_city() -> None:
    assert f_term("city")["score"] == 1.0
    assert f_term("city", o=offer(preferences={"priority_cities": ["jiaxing"]}))["score"] == 0.3
    assert f_term("city", o=offer(preferences={}))["score"] == 0.5


def test_qualifications_take_the_strongest_valid_one() -> None:
    quals = [{"kind": "tech_sme"}, {"kind": "little_giant", "expires_on": "2026-01-01"}]
    assert f_term("qualifications")["score"] == 0.65
    p = project(enterprise_kw={"qualifications": quals})
    assert f_term("qualifications", p)["score"] == 0.45  # the little giant title lapsed
    assert f_term("qualifications", p)["note"] == "tech_sme"


def test_financials_average_what_is_known() -> None:
    # revenue 42 m against 20 m: 42/62; debt 0.35: 0.65; R&D 0.12: 1
    expected = (42 / 62 + 0.65 + 1.0) / 3
    assert f_term("financials")["score"] == pytest.approx(expected, abs=1e-4)
    o = offer(requirements={})
    p = project(enterprise_kw={"debt_ratio": None, "rd_intensity": None})
    assert f_term("financials", p, o)["score"] == pytest.approx(42 / 62, abs=1e-4)
    none = {"debt_ratio": None, "rd_intensity": None, "annual_revenue_cny": None}
    assert f_term("financials", project(enterprise_kw=none), o)["unknown"]


def test_ticket_fit_is_one_at_the_geometric_centre_and_zero_at_the_ends() -> None:
    o = offer(ticket_min_cny=5_000_000, ticket_max_cny=80_000_000)  # centre 20 m
    assert f_term("ticket", o=o)["score"] == 1.0
    low = project(amount_cny=5_000_000, min_amount_cny=None)
    assert f_term("ticket", low, o)["score"] == 0.0
    fixed = offer(ticket_min_cny=20_000_000, ticket_max_cny=20_000_000)
    assert f_term("ticket", o=fixed)["score"] == 1.0


# ---- weights and totals ------------------------------------------------------------------------


def test_weights_are_overridable_per_project_and_per_offer() -> None:
    p = project(weights={"cost": 0.0, "speed": 0.0, "amount": 0.0, "instrument": 0.0})
    ev, _ = views(p, offer())
    assert ev["total"] == term(ev, "collateral")["score"] == 1.0
    assert term(ev, "collateral")["weight"] == 1.0
    o = offer(preferences={"weights": {"city": 3.0}, "priority_cities": ["shanghai"]})
    _, fv = views(project(), o)
    assert term(fv, "city")["weight"] == pytest.approx(3 / 3.85, abs=1e-4)


def test_the_combined_score_is_the_mean_of_both_views() -> None:
    e = engine(project(), offer())
    (p,) = e.proposals_for_project("prj-1")
    assert p.score == pytest.approx((p.enterprise_score + p.funder_score) / 2, abs=1e-4)
    assert p.enterprise_view is not None and p.enterprise_view["total"] == p.enterprise_score


def test_a_pair_scores_the_same_bits_whichever_way_round() -> None:
    rng = np.random.default_rng(7)
    projects = [
        project(f"p{i}", amount_cny=int(x), min_amount_cny=None)
        for i, x in enumerate(rng.integers(1_000_000, 30_000_000, 50))
    ]
    rates, days = rng.integers(300, 450, 40), rng.integers(1, 90, 40)
    offers = [
        offer(f"o{i}", pricing={"rate_bp": int(r)}, decision_days=int(d))
        for i, (r, d) in enumerate(zip(rates, days, strict=True))
    ]
    P = ProjectTable()
    for p in projects:
        P.put(p.id, ProjectTable.encode(p, AS_OF))
    Q = OfferTable()
    for o in offers:
        Q.put(o.id, OfferTable.encode(o))
    Pv, Ov = P.view(), Q.view()
    block = scoring.totals({k: v[:, None] for k, v in Pv.items()}, Ov)
    for i in range(len(projects)):
        row = scoring.totals(P.one(i), Ov)
        assert all((a[i] == b).all() for a, b in zip(block, row, strict=True))
    for j in range(len(offers)):
        col = scoring.totals(Pv, Q.one(j))
        assert all((a[:, j] == b).all() for a, b in zip(block, col, strict=True))


def test_breakdowns_of_a_block_of_pairs_total_as_the_totals_do() -> None:
    """`breakdowns` computes each side's terms once and its totals from them: each pair's
    view totals what `totals` gives, and its terms are the pair's own."""
    rng = np.random.default_rng(11)
    projects = [
        project(f"p{i}", amount_cny=int(x), min_amount_cny=None)
        for i, x in enumerate(rng.integers(1_000_000, 30_000_000, 12))
    ]
    offers = [
        offer(f"o{i}", pricing={"rate_bp": int(r)}, decision_days=int(d))
        for i, (r, d) in enumerate(
            zip(rng.integers(300, 450, 12), rng.integers(1, 90, 12), strict=True)
        )
    ]
    P, Q = ProjectTable(), OfferTable()
    for p in projects:
        P.put(p.id, ProjectTable.encode(p, AS_OF))
    for o in offers:
        Q.put(o.id, OfferTable.encode(o))
    prows = rng.integers(0, len(projects), 30)
    orows = rng.integers(0, len(offers), 30)
    Pv, Ov = P.view(), Q.view()
    Pp = {k: np.asarray(v)[prows] for k, v in Pv.items()}
    Op = {k: np.asarray(v)[orows] for k, v in Ov.items()}
    e_q, f_q = scoring.totals(Pp, Op)
    got = explanations.breakdowns(Pp, Op)
    assert [e["total"] for e, _ in got] == [scoring.as_score(q) for q in e_q.tolist()]
    assert [f["total"] for _, f in got] == [scoring.as_score(q) for q in f_q.tolist()]
    for i in (0, 17):
        (one,) = explanations.breakdowns(P.one(int(prows[i])), Q.one(int(orows[i])))
        assert one == got[i]


def test_rounded_is_pythons_round_bit_for_bit() -> None:
    """The breakdowns round their columns together (`explanations.rounded`): each value is what
    `round(v, 4)` gives, to the bit, near halves (where the vectorised product could land on
    the other side), for negatives, zeros, large and non-finite values too."""
    rng = np.random.default_rng(9)
    halves = (np.arange(-20_000, 20_001) + 0.5) / 1e4  # the doubles nearest to k.5 / 1e4
    near = np.concatenate([np.nextafter(halves, s) for s in (-np.inf, np.inf)] + [halves])
    values = np.concatenate(
        [
            rng.random(50_000),
            rng.normal(0, 3, 20_000),
            near,
            [0.0, -0.0, 1.0, -1e-5, 5e-5, 2.0**41 + 0.5, 1e300, np.inf, -np.inf, np.nan],
        ]
    )
    got = explanations.rounded(values, len(values), nan=math.nan)
    for v, r in zip(values.tolist(), got, strict=True):
        want = round(v, 4)
        assert (math.isnan(r) and math.isnan(want)) or struct.pack("<d", r) == struct.pack(
            "<d", want
        ), v
    assert explanations.rounded(np.array([np.nan, 0.12345]), 2) == [None, 0.1235]
    assert explanations.rounded(np.float64(0.33333), 3) == [0.3333] * 3  # broadcast


@pytest.mark.parametrize("n", [1, 3, 40])
def test_rounded_rows_round_each_array_as_on_its_own(n: int) -> None:
    """`rounded_rows` rounds several arrays in one pass (a scalar broadcast, NaNs and values
    near a half in some rows only): each row is `round(v, 4)` of its own array's values, the
    values Python's `round` must settle put back in their own row and place."""
    rng = np.random.default_rng(n)
    rows: list[Any] = [rng.random(n) for _ in range(5)]
    rows[1][n // 2] = np.nan
    rows[3][-1] = 0.12345  # the double nearest to it lies below the half: 0.1234
    rows[4] = np.float64(0.00005)
    for nan in (None, math.nan):
        got = explanations.rounded_rows(rows, n, nan=nan)
        assert len(got) == len(rows)
        for row, values in zip(got, rows, strict=True):
            want = [nan if v != v else round(v, 4) for v in np.broadcast_to(values, (n,)).tolist()]
            assert [struct.pack("<d", x) if x is not None else x for x in row] == [
                struct.pack("<d", x) if x is not None else x for x in want
            ]


def test_with_breakdowns_keeps_every_field_of_the_proposal() -> None:
    """`with_breakdowns` makes each proposal again with its views: every other field is the
    proposal's own (a field added to `Proposal` and not passed on fails here)."""
    from dataclasses import replace

    e = engine(project(), offer("off-1"), offer("off-2", pricing={"rate_bp": 300}))
    bare = e.proposals_for_project("prj-1", breakdowns=False, allocated=True)
    full = e.proposals_for_project("prj-1", breakdowns=True, allocated=True)
    assert len(bare) == 2
    got = e.with_breakdowns(bare)
    assert got == [
        replace(p, enterprise_view=f.enterprise_view, funder_view=f.funder_view)
        for p, f in zip(bare, full, strict=True)
    ]
    assert got == full
