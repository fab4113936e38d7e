"""Benchmark of the matching engine (`make bench-match`), with baselines run in the same command.

Figures (the issue's targets in brackets):
  * full allocation, 100,000 projects × 10,000 offers: batch load + allocation [≤ 30 s, ≤ 4 GiB]
  * one new project against 10,000 offers: scoring + proposals, p50/p99 [p99 ≤ 5 ms]
  * one new offer against 100,000 projects: scoring + proposal delta, p50/p99 [p99 ≤ 50 ms]
  * scoring throughput [≥ 0.3× the bare numpy kernel]
  * full allocation: the allocation alone [≤ 15 s], with its residual blocking pairs [fewer]
  * the allocation after one change, from an engine snapshot, kept between runs: p50/p99 over
    single changes of each kind [≤ 1 s p99], with its ratio to the full allocation (recomputed
    from scratch, as before issue 9) and its blocking pairs against a batch run on the same state
  * the service (memory store, market loaded): event → proposals stored [p99 ≤ 50 ms]; the
    background allocation; GET /v1/projects/{id}/matches over HTTP while it runs [≤ 50 ms],
    with ratios to the engine alone and to idle GETs (see bench_service.py)
Baselines: a bare numpy kernel of the same rules and score formula (straight-line numpy on
pre-broadcast columns: no pruning, no caches, no dictionaries), and a naive per-pair Python loop
on a subsample. Each figure is printed with its ratio to them. Peak memory is the process's peak
resident set (resource.getrusage), which includes the generated input models.

    .venv/bin/python bench/bench_match.py            # full size
    .venv/bin/python bench/bench_match.py --quick    # 10,000 × 1,000, fewer samples
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import bench_service  # the service's section (bench/ is on the path when run as a script)
import numpy as np

from matching.domain import scoring, uscc
from matching.domain.allocation import warm_up
from matching.domain.columns import Cols
from matching.domain.engine import MatchEngine
from matching.domain.market import MarketAllocation, allocate_market
from matching.domain.model import (
    City,
    Collateral,
    Instrument,
    Offer,
    Project,
    Qualification,
    Sector,
    Stage,
)
from matching.domain.pairkernels import warm_up as load_kernels_warm_up

AS_OF = date(2026, 11, 26)

# ---- a synthetic G60 market -------------------------------------------------------------------
# Projects across the nine cities; offers shaped like the alliance's products (bank credit lines
# such as 科创贷, secured and IP-pledge loans, VC and G60-fund equity, leasing, guarantees).
# Deterministic for a seed; plausible mixes, not statistics.

CITIES = list(City)
CITY_WEIGHTS = [25, 10, 14, 6, 14, 6, 5, 8, 12]
SECTORS, STAGES = list(Sector), list(Stage)
STAGE_WEIGHTS = [8, 10, 24, 20, 10, 22, 6]
LOANS = [Instrument.credit_loan, Instrument.secured_loan, Instrument.ip_pledge_loan]
EQUITY = [Instrument.equity, Instrument.convertible]
BODY = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _round(x: float, unit: int = 100_000) -> int:
    return max(unit, int(x // unit * unit))


def _maybe(rng: random.Random, p: float, value: Any) -> Any:
    return value if rng.random() < p else None


def gen_project(rng: random.Random, i: int, as_of: date) -> Project:
    stage = rng.choices(STAGES, STAGE_WEIGHTS)[0]
    early = STAGES.index(stage) <= 2
    amount = _round(min(max(rng.lognormvariate(16.1, 1.0), 1e6), 3e8))
    first = rng.choice(EQUITY) if early and rng.random() < 0.7 else rng.choice(LOANS)
    pool = [x for x in Instrument if x != first]
    instruments = [first, *rng.sample(pool, rng.choices([0, 1, 2], [3, 5, 2])[0])]
    quals = [
        {
            "kind": q,
            "expires_on": (as_of + timedelta(days=rng.randint(-200, 1100))).isoformat(),
        }
        for q in rng.sample(list(Qualification), rng.choices([0, 1, 2], [4, 4, 2])[0])
    ]
    body = "91" + "".join(rng.choice(BODY) for _ in range(15))
    enterprise = {
        "id": f"ent-{i:07d}",
        "name": f"enterprise {i}",
        "uscc": uscc.make(body),
        "city": rng.choices(CITIES, CITY_WEIGHTS)[0],
        "sectors": [rng.choice(SECTORS)],
        "founded_on": (as_of - timedelta(days=rng.randint(200, 7000))).isoformat(),
        "headcount": rng.randint(5, 2000),
        "annual_revenue_cny": _maybe(rng, 0.8, _round(rng.lognormvariate(17.0, 1.3))),
        "rd_intensity": _maybe(rng, 0.6, round(rng.uniform(0.01, 0.25), 3)),
        "debt_ratio": _maybe(rng, 0.7, round(rng.uniform(0.05, 0.9), 2)),
        "qualifications": quals,
        "collateral": rng.sample(list(Collateral), rng.choices([0, 1, 2], [5, 3, 2])[0]),
    }
    return Project.model_validate(
        {
            "id": f"prj-{i:07d}",
            "enterprise": enterprise,
            "amount_cny": amount,
            "min_amount_cny": _maybe(rng, 0.5, _round(amount * rng.uniform(0.3, 0.9))),
            "instruments": instruments,
            "stage": stage,
            "sector": enterprise["sectors"][0],
            "purpose": "expansion",
            "term_months": _maybe(rng, 0.5, rng.choice([12, 24, 36, 60])),
            "max_cost_bp": _maybe(rng, 0.6, rng.randint(350, 800)),
            "deadline": _maybe(
                rng, 0.5, (as_of + timedelta(days=rng.randint(20, 365))).isoformat()
            ),
            "max_dilution": _maybe(rng, 0.5, round(rng.uniform(0.05, 0.3), 2)),
            "weights": _maybe(rng, 0.1, {"cost": rng.uniform(0, 1), "speed": rng.uniform(0, 1)}),
        }
    )


def gen_offer(rng: random.Random, i: int, as_of: date) -> Offer:
    kind = rng.choices(
        ["bank", "vc", "leasing", "g60_fund", "guarantor", "securities"], [60, 20, 8, 2, 5, 5]
    )[0]
    equity_like = kind in ("vc", "g60_fund", "securities")
    if equity_like:
        instrument = Instrument.equity if kind == "g60_fund" else rng.choice(EQUITY)
        tmin = _round(rng.choice([1, 3, 5, 10]) * 1e6)
        tmax = tmin * rng.choice([5, 10, 20])
        start = rng.randint(0, 4)
        stages = STAGES[start : start + rng.randint(2, 3)]
    else:
        instrument = (
            Instrument.leasing
            if kind == "leasing"
            else (Instrument.credit_loan if kind == "guarantor" else rng.choice(LOANS))
        )
        tmin = _round(rng.choice([0.5, 1, 2]) * 1e6)
        tmax = tmin * rng.choice([10, 20, 50])
        stages = [] if rng.random() < 0.5 else STAGES[rng.randint(2, 4) :]
    all_cities = kind == "g60_fund" or rng.random() < 0.3
    collateral: list[Collateral] = []
    if instrument == Instrument.secured_loan:
        collateral = rng.sample(
            [Collateral.property, Collateral.equipment, Collateral.receivables], 2
        )
    elif instrument == Instrument.ip_pledge_loan:
        collateral = [Collateral.ip]
    elif instrument == Instrument.leasing:
        collateral = [Collateral.equipment]
    return Offer.model_validate(
        {
            "id": f"off-{i:06d}",
            "funder_id": f"fun-{i // 5:05d}",
            "funder_kind": kind,
            "name": f"{kind} product {i}",
            "instrument": instrument,
            "ticket_min_cny": tmin,
            "ticket_max_cny": tmax,
            "capacity_cny": _round(tmax * rng.uniform(2, 30)),
            "max_deals": _maybe(rng, 0.5, rng.randint(5, 60)),
            "deals_taken": 0,
            "cities": [] if all_cities else rng.sample(CITIES, rng.randint(1, 3)),
            "sectors": []
            if (not equity_like and rng.random() < 0.7)
            else rng.sample(SECTORS, rng.randint(1, 4)),
            "stages": stages,
            "requirements": {
                "qualifications_any": []
                if rng.random() < 0.5
                else rng.sample(list(Qualification), 2),
                "min_revenue_cny": _maybe(
                    rng, 0.4 if equity_like else 0.6, _round(rng.uniform(2e6, 5e7))
                ),
                "min_years": _maybe(rng, 0.5, rng.choice([1, 2, 3, 5])),
                "max_debt_ratio": _maybe(
                    rng, 0.0 if equity_like else 0.6, rng.choice([0.6, 0.7, 0.8])
                ),
                "collateral_required": collateral,
            },
            "pricing": {"max_equity_share": round(rng.uniform(0.05, 0.3), 2)}
            if equity_like
            else {"rate_bp": rng.randint(300, 700)},
            "decision_days": _maybe(rng, 0.7, rng.randint(5, 90)),
            "response_deadline_days": rng.choice([7, 14, 30]),
            "valid_from": (as_of - timedelta(days=rng.randint(31, 400))).isoformat(),
            "valid_until": (as_of + timedelta(days=rng.randint(-30, 700))).isoformat(),
            "preferences": {
                "priority_cities": []
                if rng.random() < 0.5
                else rng.sample(CITIES, rng.randint(1, 2)),
                "priority_sectors": []
                if rng.random() < 0.7
                else rng.sample(SECTORS, rng.randint(1, 2)),
                "weights": _maybe(
                    rng, 0.1, {"sector": rng.uniform(0, 1), "ticket": rng.uniform(0, 1)}
                ),
            },
        }
    )


def market(
    n_projects: int, n_offers: int, as_of: date, seed: int = 60
) -> tuple[list[Project], list[Offer]]:
    rng = random.Random(seed)
    offers = [gen_offer(rng, i, as_of) for i in range(n_offers)]
    projects = [gen_project(rng, i, as_of) for i in range(n_projects)]
    return projects, offers


# ---- baselines ----------------------------------------------------------------------------------


def bare_kernel(P: Cols, Oc: Cols, as_of: int) -> tuple[Any, Any, Any]:
    """The engine's rules and both score totals written flat over broadcast columns (P as
    column vectors, O as rows): every pair is checked and scored, nothing is pruned."""
    return bare_rules(P, Oc, as_of), *bare_scores(P, Oc)


def bare_rules(P: Cols, Oc: Cols, as_of: int) -> Any:
    amount, floor, quals, coll = P["amount"], P["floor"], P["quals"], P["coll"]
    rev, years, debt = P["revenue"], P["years"], P["debt"]
    max_cost, max_dil, deadline = P["max_cost"], P["max_dil"], P["deadline"]
    tmin, tmax, cap = Oc["tmin"], Oc["tmax"], Oc["cap"]
    rate, share = Oc["rate"], Oc["eq_share"]
    a = np.minimum(amount, tmax)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (Oc["city_mask"] & P["city_bit"]) != 0
        ok &= (Oc["sector_mask"] & P["sector_bit"]) != 0
        ok &= (Oc["stage_mask"] & P["stage_bit"]) != 0
        ok &= (Oc["instr_bit"] & P["instr_mask"]) != 0
        ok &= Oc["active"] & (Oc["valid_from"] <= as_of) & (Oc["valid_until"] >= as_of)
        ok &= (Oc["deals_left"] > 0) & (tmin <= amount) & (tmax >= floor) & (cap >= a)
        ok &= (Oc["q_any"] == 0) | ((Oc["q_any"] & quals) != 0)
        ok &= (Oc["q_all"] & quals) == Oc["q_all"]
        ok &= (Oc["coll_req"] == 0) | ((Oc["coll_req"] & coll) != 0)
        ok &= np.isnan(Oc["min_rev"]) | (rev >= Oc["min_rev"])
        ok &= np.isnan(Oc["min_years"]) | (years >= Oc["min_years"])
        ok &= np.isnan(Oc["max_debt"]) | (debt <= Oc["max_debt"])
        ok &= ~(rate > max_cost) & ~(share > max_dil) & (deadline >= as_of + Oc["days0"])
    return ok


def bare_scores(P: Cols, Oc: Cols) -> tuple[Any, Any]:
    p_city, p_sector, amount = P["city_bit"], P["sector_bit"], P["amount"]
    rev, debt, rd, max_cost, max_dil = P["revenue"], P["debt"], P["rd"], P["max_cost"], P["max_dil"]
    rate, share, days = Oc["rate"], Oc["eq_share"], Oc["days"]
    with np.errstate(invalid="ignore", divide="ignore"):
        af = np.minimum(amount, Oc["tmax"]).astype(np.float64)
        # the enterprise's view
        by_rate = np.clip(
            1 - rate / np.maximum(np.where(np.isnan(max_cost), 1000.0, max_cost), 1.0), 0, 1
        )
        by_share = np.clip(
            1 - share / np.maximum(np.where(np.isnan(max_dil), 0.5, max_dil), 0.01), 0, 1
        )
        cost = np.where(np.isnan(rate), by_share, by_rate)
        speed = 30.0 / (30.0 + days)
        place = (P["instr_rank"] >> (4 * Oc["instr"])) & 15
        instr = np.where(place > 0, 1.0 - (place - 1) / P["n_instr"], 0.0)
        e = (
            P["ew_cost"] * np.where(np.isnan(cost), 0.5, cost)
            + P["ew_speed"] * np.where(np.isnan(speed), 0.5, speed)
            + P["ew_amount"] * (af / amount)
            + P["ew_instrument"] * instr
            + P["ew_collateral"] * np.where(Oc["coll_req"] == 0, 1.0, 0.5)
        )
        # the funder's view
        prio_s, prio_c = Oc["prio_sector"], Oc["prio_city"]
        sector = np.where(
            (prio_s & p_sector) != 0,
            1.0,
            np.where(Oc["sector_explicit"], 0.75, np.where(prio_s != 0, 0.4, 0.5)),
        )
        dist = np.abs(P["stage_idx"] - Oc["stage_center"]) / Oc["stage_half"]
        stage = np.where(np.isnan(Oc["stage_center"]), 0.5, 1.0 - 0.5 * np.minimum(dist, 1.0))
        city = np.where(prio_c == 0, 0.5, np.where((prio_c & p_city) != 0, 1.0, 0.3))
        ratio = rev / af
        x1, x2, x3 = ratio / (1.0 + ratio), 1.0 - debt, np.minimum(rd / 0.1, 1.0)
        known = (~np.isnan(x1)).astype(float) + (~np.isnan(x2)) + (~np.isnan(x3))
        summed = (
            np.where(np.isnan(x1), 0, x1)
            + np.where(np.isnan(x2), 0, x2)
            + np.where(np.isnan(x3), 0, x3)
        )
        fin = np.where(known > 0, summed / np.maximum(known, 1.0), 0.5)
        close = np.minimum(af / Oc["mid"], Oc["mid"] / af)
        edge = Oc["edge"]
        ticket = np.where(edge < 1.0, np.clip((close - edge) / (1.0 - edge), 0, 1), 1.0)
        f = (
            Oc["fw_sector"] * sector
            + Oc["fw_stage"] * stage
            + Oc["fw_city"] * city
            + Oc["fw_qualifications"] * P["qual_strength"]
            + Oc["fw_financials"] * fin
            + Oc["fw_ticket"] * ticket
        )
    return np.rint(e * scoring.SCALE), np.rint(f * scoring.SCALE)


def naive_pair(p: dict[str, Any], o: dict[str, Any], as_of: int) -> tuple[bool, float, float]:
    """One pair in plain Python, the same rules and formula (columns as Python scalars)."""
    nan = math.isnan
    a = min(p["amount"], o["tmax"])
    ok = (
        o["city_mask"] & p["city_bit"]
        and o["sector_mask"] & p["sector_bit"]
        and o["stage_mask"] & p["stage_bit"]
        and o["instr_bit"] & p["instr_mask"]
        and o["active"]
        and o["valid_from"] <= as_of <= o["valid_until"]
        and o["deals_left"] > 0
        and o["tmin"] <= p["amount"]
        and o["tmax"] >= p["floor"]
        and o["cap"] >= a
        and (o["q_any"] == 0 or o["q_any"] & p["quals"])
        and o["q_all"] & p["quals"] == o["q_all"]
        and (o["coll_req"] == 0 or o["coll_req"] & p["coll"])
        and (nan(o["min_rev"]) or p["revenue"] >= o["min_rev"])
        and (nan(o["min_years"]) or p["years"] >= o["min_years"])
        and (nan(o["max_debt"]) or p["debt"] <= o["max_debt"])
        and not (o["rate"] > p["max_cost"])
        and not (o["eq_share"] > p["max_dil"])
        and p["deadline"] >= as_of + o["days0"]
    )
    if not nan(o["rate"]):
        ref = 1000.0 if nan(p["max_cost"]) else p["max_cost"]
        cost = min(max(1 - o["rate"] / max(ref, 1.0), 0.0), 1.0)
    elif not nan(o["eq_share"]):
        ref = 0.5 if nan(p["max_dil"]) else p["max_dil"]
        cost = min(max(1 - o["eq_share"] / max(ref, 0.01), 0.0), 1.0)
    else:
        cost = 0.5
    speed = 0.5 if nan(o["days"]) else 30 / (30 + o["days"])
    place = p["instr_rank"] >> (4 * o["instr"]) & 15
    instr = 1 - (place - 1) / p["n_instr"] if place else 0.0
    e = (
        p["ew_cost"] * cost
        + p["ew_speed"] * speed
        + p["ew_amount"] * a / p["amount"]
        + p["ew_instrument"] * instr
        + p["ew_collateral"] * (1.0 if o["coll_req"] == 0 else 0.5)
    )
    if o["prio_sector"] & p["sector_bit"]:
        sector = 1.0
    else:
        sector = 0.75 if o["sector_explicit"] else (0.4 if o["prio_sector"] else 0.5)
    if nan(o["stage_center"]):
        stage = 0.5
    else:
        stage = 1 - 0.5 * min(abs(p["stage_idx"] - o["stage_center"]) / o["stage_half"], 1.0)
    city = 0.5 if not o["prio_city"] else (1.0 if o["prio_city"] & p["city_bit"] else 0.3)
    parts = []
    if not nan(p["revenue"]):
        r = p["revenue"] / a
        parts.append(r / (1 + r))
    if not nan(p["debt"]):
        parts.append(1 - p["debt"])
    if not nan(p["rd"]):
        parts.append(min(p["rd"] / 0.1, 1.0))
    fin = sum(parts) / len(parts) if parts else 0.5
    close = min(a / o["mid"], o["mid"] / a)
    ticket = min(max((close - o["edge"]) / (1 - o["edge"]), 0.0), 1.0) if o["edge"] < 1 else 1.0
    f = (
        o["fw_sector"] * sector
        + o["fw_stage"] * stage
        + o["fw_city"] * city
        + o["fw_qualifications"] * p["qual_strength"]
        + o["fw_financials"] * fin
        + o["fw_ticket"] * ticket
    )
    return bool(ok), e, f


def rows_of(cols: Cols, idx: list[int]) -> list[dict[str, Any]]:
    lists = {k: v[idx].tolist() for k, v in cols.items()}
    return [{k: lists[k][i] for k in lists} for i in range(len(idx))]


# ---- measurement helpers -----------------------------------------------------------------------


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q / 100 * len(xs)) - 1))]


def ms(x: float) -> str:
    return f"{x * 1e3:8.2f} ms"


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def engine_mib(e: MatchEngine) -> float:
    arrays = [*e.projects.cols.values(), *e.offers.cols.values()]
    for c in (e.ranked, e.market.prefs):
        arrays += [c.off, c.key, c.aux, c.count, c.exhaustive]
    return sum(a.nbytes for a in arrays) / 2**20


def say(text: str = "") -> None:
    print(text, flush=True)


def line(name: str, value: str, target: str = "", ratios: str = "") -> None:
    say(f"  {name:<46}{value:>14}  {target:<12}{ratios}")


# ---- the benchmark ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10,000 × 1,000 and fewer samples")
    ap.add_argument("--projects", type=int, help="projects in the market (default 100,000)")
    ap.add_argument("--offers", type=int, help="offers in the market (default 10,000)")
    ap.add_argument("--samples", type=int, help="new projects / offers timed (default 300)")
    ap.add_argument("--block", type=int, help="projects in the throughput block (default 2,000)")
    ap.add_argument("--naive-pairs", type=int, default=20_000, help="pairs for the Python loop")
    ap.add_argument("--seed", type=int, default=60)
    ap.add_argument("--no-service", action="store_true", help="skip the service's section")
    ap.add_argument("--get-seconds", type=float, default=5.0, help="idle GETs (the baseline)")
    ap.add_argument("--restart", action="store_true", help="also time a service restart")
    ap.add_argument("--changes", type=int, help="single changes of each kind timed (default 24)")
    ap.add_argument(
        "--cpu",
        action="store_true",
        help="time the allocation after one change in CPU time of the process (a loaded machine)",
    )
    ap.add_argument(
        "--allocation-only",
        action="store_true",
        help="only the full allocation and the allocation after one change (no service)",
    )
    args = ap.parse_args(argv)
    n_p = args.projects or (10_000 if args.quick else 100_000)
    n_o = args.offers or (1_000 if args.quick else 10_000)
    samples = args.samples or (100 if args.quick else 300)
    args.changes = args.changes or (8 if args.quick else 24)
    block = min(args.block or (500 if args.quick else 2_000), n_p)
    as_of = AS_OF.toordinal()
    say(f"matching engine benchmark: {n_p:,} projects × {n_o:,} offers, top k 10, seed {args.seed}")
    say(f"python {sys.version.split()[0]}, numpy {np.__version__}")

    t = time.perf_counter()
    projects, offers = market(n_p + samples, n_o + samples, AS_OF, args.seed)
    new_projects, projects = projects[n_p:], projects[:n_p]
    new_offers, offers = offers[n_o:], offers[:n_o]
    took = time.perf_counter() - t
    say(f"generated the market in {took:.1f} s (pydantic models; not timed below)")

    # -- full allocation ----------------------------------------------------------------------
    say("\nfull allocation (batch)")
    e = MatchEngine(AS_OF, top_k=10)
    t = time.perf_counter()
    warm_up()  # the kernels from numba's cache (compiled if none), as the allocator's start does
    load_kernels_warm_up()  # the batch load's (else the load pays ~0.3 s)
    t_cached = time.perf_counter() - t
    t0 = time.perf_counter()
    e.load(projects, offers, delta=False)
    t1 = time.perf_counter()
    kept = MarketAllocation()  # the allocation's state, kept for the runs after one change
    stages: dict[str, int] = {}

    def first_count(stage: str, _: int, n: int) -> None:
        stages.setdefault(stage, n)

    alloc = kept(e.snapshot(), first_count)
    e.adopt(alloc)
    t2 = time.perf_counter()
    line("batch load: rules, both scores, top-k caches", f"{t1 - t0:9.2f} s")
    line("allocation: deferred acceptance + repair", f"{t2 - t1:9.2f} s")
    line("full allocation, total", f"{t2 - t0:9.2f} s", "[≤ 15 s]")
    line("peak memory (process RSS, incl. input models)", f"{peak_mib():8.0f} MiB", "[≤ 4096]")
    line("engine arrays", f"{engine_mib(e):8.0f} MiB")
    da = stages.get("deferred acceptance: proposals, blocking pairs", 0)
    line(
        "residual blocking pairs (after repair)",
        f"{len(alloc.blocking_pairs):8d}",
        "[fewer]",
        f"{len(alloc.blocking_pairs) / max(da, 1):6.3f}× the {da:,} deferred acceptance left",
    )
    t_compile = compile_time()
    line(
        "kernels: first call, compiled (empty numba cache)",
        f"{t_compile:9.2f} s",
        "",
        f"{t_compile / (t2 - t1):6.2f}× the allocation (once per fresh clone)",
    )
    line(
        "kernels: first call, from numba's cache",
        f"{t_cached:9.2f} s",
        "",
        f"{t_cached / (t2 - t1):6.2f}× the allocation (each start, before any event)",
    )
    said = sum(a.amount_cny for a in alloc.assignments)
    say(
        f"  {len(alloc.assignments):,} of {n_p:,} projects allocated ({said / 1e9:,.1f} bn CNY); "
        f"stable: {alloc.stable}, {len(alloc.blocking_pairs)} blocking pairs left, "
        f"{alloc.repair_rounds} repair rounds, {alloc.proposals_made:,} proposals"
    )

    if args.allocation_only:
        clock = time.process_time if args.cpu else time.perf_counter
        after_one_change(
            e, kept, projects, offers, new_projects, new_offers, t2 - t1, args.changes, clock
        )
        line("\npeak memory (process RSS)", f"{peak_mib():8.0f} MiB", "[≤ 4096]")
        return 0

    # -- scoring throughput -------------------------------------------------------------------
    say(f"\nscoring throughput: {block:,} projects × {n_o:,} offers = {block * n_o:,} pairs")
    rows = np.flatnonzero(e.projects.view()["active"])[:block].astype(np.int64)
    pairs_total = rows.size * n_o
    t = time.perf_counter()
    e.market._refresh(rows)  # the engine's batch path: pruning, rules, scores, top-k, cache writes
    t_engine = time.perf_counter() - t
    Pall, Ov = e.projects.view(), e.offers.view()
    chunks = [
        {k: v[rows[i : i + 100]][:, None] for k, v in Pall.items()}
        for i in range(0, rows.size, 100)
    ]
    t = time.perf_counter()
    results = [bare_kernel(Pc, Ov, as_of) for Pc in chunks]
    t_bare = time.perf_counter() - t
    ok = np.vstack([r[0] for r in results])
    ri, ci = np.nonzero(ok)
    eligible = ri.size
    # the scoring kernel alone, on the eligible pairs, against the bare formula on the same pairs
    Pp = {k: v[rows[ri]] for k, v in Pall.items()}
    Op = {k: v[ci] for k, v in Ov.items()}
    t = time.perf_counter()
    e_q, f_q = scoring.totals(Pp, Op)
    t_score = time.perf_counter() - t
    t = time.perf_counter()
    e_b, f_b = bare_scores(Pp, Op)
    t_bare_score = time.perf_counter() - t
    same = bool((e_q == e_b).all() and (f_q == f_b).all())
    rng = np.random.default_rng(args.seed)
    k = min(args.naive_pairs, pairs_total)
    sub_p = rng.integers(0, rows.size, k)
    sub_o = rng.integers(0, n_o, k)
    prow = rows_of(Pall, rows[sub_p].tolist())
    orow = rows_of(Ov, sub_o.tolist())
    t = time.perf_counter()
    naive = [naive_pair(p, o, as_of) for p, o in zip(prow, orow, strict=True)]
    t_naive = time.perf_counter() - t
    ok_b = ok[sub_p, sub_o]
    naive_agrees = all(bool(x[0]) == bool(y) for x, y in zip(naive, ok_b, strict=True))
    r_engine, r_bare, r_naive = pairs_total / t_engine, pairs_total / t_bare, k / t_naive
    line(
        "engine batch path (pairs considered / s)",
        f"{r_engine / 1e6:8.1f} M/s",
        "[≥ 0.3×]",
        f"{r_engine / r_bare:5.2f}× bare, {r_engine / r_naive:7.0f}× naive",
    )
    line("bare numpy kernel, every pair", f"{r_bare / 1e6:8.1f} M/s")
    line(f"naive Python loop ({k:,} pairs)", f"{r_naive / 1e3:8.1f} k/s")
    s_engine, s_bare = eligible / t_score, eligible / t_bare_score
    line(
        f"scoring kernel alone ({eligible:,} eligible pairs)",
        f"{s_engine / 1e6:8.1f} M/s",
        "[≥ 0.3×]",
        f"{s_engine / s_bare:5.2f}× bare scores",
    )
    say(
        f"  eligible: {eligible / pairs_total:.2%} of pairs; bare and engine scores identical: "
        f"{same}; naive and bare rules agree: {naive_agrees}"
    )

    # The loaded market and the input models out of the collector's way, as the service freezes
    # them once its engine is loaded (bootstrap.py): else a full collection (~0.1 s, walking
    # every model) lands in some timed upsert and is its p99.
    gc.collect()
    gc.freeze()
    # -- one new project against all offers ----------------------------------------------------
    say(f"\none new project against {n_o:,} offers ({samples} samples)")
    lat, lat_bd, sizes, cols = [], [], [], []
    for p in new_projects:
        t = time.perf_counter()
        e.upsert_project(p)
        e.proposals_for_project(p.id, breakdowns=False, allocated=False)
        lat.append(time.perf_counter() - t)
        cols.append(e.projects.one(e.projects.row[p.id]))
        e.remove_project(p.id)
        t = time.perf_counter()
        delta = e.upsert_project(p)
        props = e.proposals_for_project(p.id, breakdowns=True, allocated=False)
        lat_bd.append(time.perf_counter() - t)
        sizes.append(len(props) + 0 * len(delta.added))
        e.remove_project(p.id)
    bare = []
    for P1 in cols:
        t = time.perf_counter()
        ok1, e1, f1 = bare_kernel(P1, Ov, as_of)
        c = np.where(ok1, e1 + f1, -1.0)
        top = np.argpartition(-c, 10)[:10]
        top[np.argsort(-c[top])]
        bare.append(time.perf_counter() - t)
    n_sub = min(500, n_o)
    osub = rows_of(Ov, list(range(n_sub)))
    naive_t = []
    for P1 in cols[:20]:
        p1 = rows_of(P1, [0])[0]
        t = time.perf_counter()
        [naive_pair(p1, o, as_of) for o in osub]
        naive_t.append((time.perf_counter() - t) * n_o / n_sub)
    b50, b99, nv = pct(bare, 50), pct(bare, 99), statistics.median(naive_t)
    line("upsert + top-k proposals, p50", ms(pct(lat, 50)), "", f"{pct(lat, 50) / b50:5.2f}× bare")
    line(
        "upsert + top-k proposals, p99",
        ms(pct(lat, 99)),
        "[≤ 5 ms]",
        f"{pct(lat, 99) / b99:5.2f}× bare, {nv / pct(lat, 99):6.0f}× faster than naive",
    )
    line("... with both breakdowns per proposal, p50", ms(pct(lat_bd, 50)))
    line(
        "... with both breakdowns per proposal, p99",
        ms(pct(lat_bd, 99)),
        "[≤ 5 ms]",
        f"{pct(lat_bd, 99) / b99:5.2f}× bare",
    )
    line("bare kernel + top-k, p50 / p99", f"{b50 * 1e3:.2f} / {b99 * 1e3:.2f} ms")
    line(f"naive loop, extrapolated from {n_sub} offers", ms(nv))
    say(f"  proposals per new project: mean {statistics.mean(sizes):.1f}")

    # -- one new offer against all projects ----------------------------------------------------
    say(f"\none new offer against {n_p:,} projects ({samples} samples)")
    up, change, down, touched, ocols = [], [], [], [], []
    for o in new_offers:
        t = time.perf_counter()
        d = e.upsert_offer(o)
        up.append(time.perf_counter() - t)
        touched.append(len(d.added))
        ocols.append(e.offers.one(e.offers.row[o.id]))
        t = time.perf_counter()  # a change of the listed offer: it leaves and re-enters lists
        e.set_capacity(o.id, o.capacity_cny // 3)
        change.append(time.perf_counter() - t)
        e.upsert_offer(o)  # withdrawn as it came
        t = time.perf_counter()
        e.remove_offer(o.id)
        down.append(time.perf_counter() - t)
    bare = []
    for O1 in ocols:
        t = time.perf_counter()
        ok1, e1, f1 = bare_kernel(Pall, O1, as_of)
        np.flatnonzero(ok1.ravel())
        bare.append(time.perf_counter() - t)
    n_sub = min(2_000, n_p)
    psub = rows_of(Pall, list(range(n_sub)))
    naive_t = []
    for O1 in ocols[:10]:
        o1 = rows_of(O1, [0])[0]
        t = time.perf_counter()
        [naive_pair(p, o1, as_of) for p in psub]
        naive_t.append((time.perf_counter() - t) * n_p / n_sub)
    b50, b99, nv = pct(bare, 50), pct(bare, 99), statistics.median(naive_t)
    line(
        "upsert offer + proposal delta, p50", ms(pct(up, 50)), "", f"{pct(up, 50) / b50:5.2f}× bare"
    )
    line(
        "upsert offer + proposal delta, p99",
        ms(pct(up, 99)),
        "[≤ 50 ms]",
        f"{pct(up, 99) / b99:5.2f}× bare, {nv / pct(up, 99):6.0f}× faster than naive",
    )
    line("change offer (capacity) + proposal delta, p99", ms(pct(change, 99)))
    line("withdraw offer + proposal delta, p99", ms(pct(down, 99)))
    line("bare kernel, p50 / p99", f"{b50 * 1e3:.2f} / {b99 * 1e3:.2f} ms")
    line(f"naive loop, extrapolated from {n_sub:,} projects", ms(nv))
    say(
        f"  projects whose proposals a new offer entered: mean {statistics.mean(touched):.1f}, "
        f"max {max(touched)}"
    )

    # -- the allocation after one change -------------------------------------------------------
    after_one_change(e, kept, projects, offers, new_projects, new_offers, t2 - t1, args.changes)

    # -- the service ----------------------------------------------------------------------------
    if not args.no_service:
        asyncio.run(
            bench_service.run(
                e,
                offers,
                new_projects,
                pct(lat_bd, 99),
                say,
                line,
                args.get_seconds,
            )
        )
    if args.restart:
        asyncio.run(bench_service.restart(e, projects, offers, say, line))
    line("\npeak memory (process RSS)", f"{peak_mib():8.0f} MiB", "[≤ 4096]")
    return 0


def compile_time() -> float:
    """The kernels' first call in a fresh interpreter with an empty numba cache: what a fresh
    clone (CI) pays once, timed inside that interpreter (its imports excluded)."""
    code = (
        "import time; from matching.domain.allocation import warm_up; "
        "t = time.perf_counter(); warm_up(); print(time.perf_counter() - t)"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
    return float(out.stdout.split()[-1])


def after_one_change(
    e: MatchEngine,
    kept: MarketAllocation,
    projects: list[Project],
    offers: list[Offer],
    new_projects: list[Project],
    new_offers: list[Offer],
    t_full: float,
    n: int,
    clock: Callable[[], float] = time.perf_counter,
) -> None:
    """Single changes of each kind, each followed by the allocation from a snapshot (as the
    service's background refresh runs it), kept between runs; the figures against the full
    allocation of the same run, then a batch run on the final state for its blocking pairs."""
    cpu = " in CPU time" if clock is not time.perf_counter else ""
    say(f"\nallocation after one change ({n} changes of each kind; state kept between runs){cpu}")
    # The loaded market and this process's input models out of the collector's way, as the
    # service freezes them once its engine is loaded (the allocation itself runs in a child
    # process that holds none of them): without it, a full collection walking the 200,000 input
    # models landed inside some runs (~1 s each, the bench's heap, not the allocation's).
    gc.collect()
    gc.freeze()
    t = time.perf_counter()
    kept(e.snapshot())  # the samples above came and went: read on from them (not timed)
    say(f"  catching up with the samples above: {time.perf_counter() - t:.2f} s ({kept.mode})")
    rng = random.Random(9)
    alloc = e.allocation_map(fresh=False)
    held = sorted(p for p in (x.id for x in projects) if p in alloc)
    picks = rng.sample(held, 3 * n)
    olist = rng.sample([o.id for o in offers if o.id in set(alloc.values())], 3 * n)
    omodel = e.offer_models

    def changed_offer(oid: str) -> Offer:
        o = omodel[oid]
        return o.model_copy(update={"decision_days": (o.decision_days or 30) + 7})

    kinds: list[tuple[str, list[Any]]] = [
        ("new project", [lambda p=p: e.upsert_project(p) for p in new_projects[:n]]),
        (
            "changed project (amount -10 %)",
            [
                lambda p=p: e.upsert_project(
                    e.project_models[p].model_copy(
                        update={"amount_cny": e.project_models[p].amount_cny * 9 // 10}
                    )
                )
                for p in picks[:n]
            ],
        ),
        ("withdrawn project", [lambda p=p: e.remove_project(p) for p in picks[n : 2 * n]]),
        ("new offer", [lambda o=o: e.upsert_offer(o) for o in new_offers[:n]]),
        (
            "changed offer (decision days)",
            [lambda o=o: e.upsert_offer(changed_offer(o)) for o in olist[:n]],
        ),
        (
            "capacity changed (-20 %)",
            [
                lambda o=o: e.set_capacity(o, omodel[o].capacity_cny * 4 // 5)
                for o in olist[n : 2 * n]
            ],
        ),
        ("withdrawn offer", [lambda o=o: e.remove_offer(o) for o in olist[2 * n : 3 * n]]),
    ]
    every: list[float] = []
    worst: list[tuple[float, str, int, int, int]] = []  # (s, kind, proposals, rounds, pairs)
    batch_runs = 0
    for name, changes in kinds:
        took = []
        for change in changes:
            change()
            t = clock()
            got = kept(e.snapshot())  # the snapshot included, as the service's refresh takes it
            took.append(clock() - t)
            batch_runs += kept.mode == "batch"
            worst.append(
                (took[-1], name, got.proposals_made, got.repair_rounds, len(got.blocking_pairs))
            )
            e.adopt(got)
        every += took
        line(
            f"{name}: p50 / p99",
            f"{pct(took, 50) * 1e3:6.0f} / {pct(took, 99) * 1e3:.0f} ms",
            "",
            f"{pct(took, 99) / t_full:6.3f}× full",
        )
    line(
        f"allocation after one change, all {len(every)}: p50",
        f"{pct(every, 50) * 1e3:7.0f} ms",
        "",
        f"{pct(every, 50) / t_full:6.3f}× full",
    )
    line(
        f"allocation after one change, all {len(every)}: p99",
        f"{pct(every, 99) * 1e3:7.0f} ms",
        "[≤ 1 s]",
        f"{pct(every, 99) / t_full:6.3f}× full (recomputed from scratch before issue 9)",
    )
    say("  the slowest single changes: time, kind, proposals, repair rounds, blocking pairs after")
    for took_s, name, made, rounds, left in sorted(worst, reverse=True)[:6]:
        say(f"    {took_s * 1e3:7.0f} ms  {name:32s} {made:8,d} {rounds:3d} {left:6d}")
    t = time.perf_counter()
    again = allocate_market(e.snapshot())
    t_again = time.perf_counter() - t
    last = len(got.blocking_pairs)
    say(
        f"  {batch_runs} of {len(every)} ran the batch instead; blocking pairs after them: "
        f"{last} kept between runs, {len(again.blocking_pairs)} batch on the same state "
        f"({t_again:.1f} s)"
    )
    gc.unfreeze()


if __name__ == "__main__":
    sys.exit(main())
