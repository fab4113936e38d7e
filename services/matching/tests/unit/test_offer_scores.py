"""One offer's totals, compiled (`offerscores`), against the numpy formula they replace
(`scoring.totals` of the gathered rows), bit for bit: random columns with unknowns (NaN), every
branch of every term (no rate, no stage, no priorities, an edge of 1, amounts beyond the
ticket), random weights, rows in any order, none."""

from __future__ import annotations

import numpy as np
import pytest

from matching.domain import offerscores, scoring
from matching.domain.columns import CITIES, INSTRUMENTS, SECTORS, STAGES, Cols
from matching.domain.model import ENTERPRISE_CRITERIA, FUNDER_CRITERIA
from matching.domain.pairs import take


def _nan(rng: np.random.Generator, v: np.ndarray, p: float = 0.3) -> np.ndarray:
    return np.where(rng.random(v.size) < p, np.nan, v)


def _weights(rng: np.random.Generator, n: int, names: tuple[str, ...], prefix: str) -> Cols:
    w = rng.random((n, len(names))) * (rng.random((n, len(names))) < 0.9)
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-9)
    return {f"{prefix}{c}": w[:, j].copy() for j, c in enumerate(names)}


def projects(rng: np.random.Generator, n: int) -> Cols:
    n_instr = rng.integers(1, len(INSTRUMENTS) + 1, n)
    rank = np.zeros(n, np.int64)
    for i in range(n):
        for place, t in enumerate(rng.permutation(len(INSTRUMENTS))[: n_instr[i]], start=1):
            rank[i] |= place << (4 * int(t))
    return {
        "amount": rng.integers(1, 60, n) * 500_000,
        "city_bit": 1 << rng.integers(0, len(CITIES), n),
        "sector_bit": 1 << rng.integers(0, len(SECTORS), n),
        "instr_rank": rank,
        "stage_idx": rng.integers(0, len(STAGES), n).astype(float),
        "n_instr": n_instr.astype(float),
        "revenue": _nan(rng, rng.integers(0, 100, n) * 1e6),
        "debt": _nan(rng, rng.random(n) * 1.2),
        "rd": _nan(rng, rng.random(n) * 0.3),
        "max_cost": _nan(rng, rng.integers(0, 900, n).astype(float)),
        "max_dil": _nan(rng, rng.random(n) * 0.4),
        "qual_strength": np.where(rng.random(n) < 0.5, 0.2, rng.random(n)),
        **_weights(rng, n, ENTERPRISE_CRITERIA, "ew_"),
    }


def offers(rng: np.random.Generator, m: int) -> Cols:
    tmin = rng.integers(0, 30, m) * 1_000_000 + rng.integers(0, 2, m)
    tmax = tmin + rng.integers(0, 30, m) * 1_000_000
    lo, hi = rng.integers(0, len(STAGES), m), rng.integers(0, len(STAGES), m)
    lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    no_stage = rng.random(m) < 0.3
    return {
        "tmin": tmin,
        "tmax": tmax,
        "mid": np.sqrt(tmin * tmax.astype(float)),
        "edge": np.where(rng.random(m) < 0.2, 1.0, np.sqrt(tmin / tmax)),
        "instr": rng.integers(0, len(INSTRUMENTS), m),
        "coll_req": np.where(rng.random(m) < 0.6, 0, rng.integers(0, 16, m)),
        "prio_sector": np.where(rng.random(m) < 0.4, 0, rng.integers(0, 1 << len(SECTORS), m)),
        "prio_city": np.where(rng.random(m) < 0.4, 0, rng.integers(0, 1 << len(CITIES), m)),
        "sector_explicit": rng.random(m) < 0.5,
        "rate": _nan(rng, rng.integers(0, 1200, m).astype(float), 0.4),
        "eq_share": _nan(rng, rng.random(m) * 0.5),
        "days": _nan(rng, rng.integers(0, 90, m).astype(float), 0.2),
        "stage_center": np.where(no_stage, np.nan, (lo + hi) / 2),
        "stage_half": np.where(no_stage, 0.5, np.maximum((hi - lo) / 2, 0.5)),
        **_weights(rng, m, FUNDER_CRITERIA, "fw_"),
    }


@pytest.mark.parametrize("seed", range(10))
def test_one_offers_totals_are_scoring_totals_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(0, 600)), 40
    P, Of = projects(rng, n), offers(rng, m)
    offerscores.warm_up()
    for j in range(m):
        O1 = {k: v[j : j + 1] for k, v in Of.items()}
        rows = rng.permutation(n)[: int(rng.integers(0, n + 1))].astype(np.int64)
        want_e, want_f = scoring.totals(take(P, rows, scoring.P_COLUMNS), O1)
        got_e, got_f = offerscores.totals(P, rows, O1)
        assert got_e.tolist() == want_e.tolist()
        assert got_f.tolist() == want_f.tolist()
        assert got_e.dtype == got_f.dtype == np.int64


@pytest.mark.parametrize("seed", range(6))
def test_pairs_of_many_offers_total_as_scoring_totals_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n, m, k = int(rng.integers(1, 300)), int(rng.integers(1, 30)), int(rng.integers(0, 500))
    P, Of = projects(rng, n), offers(rng, m)
    rows, orows = rng.integers(0, n, k), rng.integers(0, m, k)  # repeats, any order
    want_e, want_f = scoring.totals(take(P, rows, scoring.P_COLUMNS), take(Of, orows))
    got_e, got_f = offerscores.pair_totals(P, rows, Of, orows)
    assert got_e.tolist() == want_e.tolist()
    assert got_f.tolist() == want_f.tolist()
    # before quantising too: the same float, not only the same multiple of 1e-9
    Pp, Op = take(P, rows, scoring.P_COLUMNS), take(Of, orows)
    e = scoring.total(scoring.enterprise_terms(Pp, Op), Pp, "ew_", ENTERPRISE_CRITERIA)
    f = scoring.total(scoring.funder_terms(Pp, Op), Op, "fw_", FUNDER_CRITERIA)
    raw_e, raw_f = offerscores.weighted(P, rows, Of, orows)
    assert raw_e.tolist() == np.broadcast_to(e, (k,)).tolist()
    assert raw_f.tolist() == np.broadcast_to(f, (k,)).tolist()


def test_unknown_terms_count_as_neutral_as_in_scoring() -> None:
    rng = np.random.default_rng(1)
    P, Of = projects(rng, 50), offers(rng, 1)
    for k in ("revenue", "debt", "rd", "max_cost", "max_dil"):
        P[k][:] = np.nan
    Of |= {"rate": np.array([np.nan]), "eq_share": np.array([np.nan])}
    Of |= {"days": np.array([np.nan])}
    rows = np.arange(50, dtype=np.int64)
    want = scoring.totals(take(P, rows, scoring.P_COLUMNS), Of)
    got = offerscores.totals(P, rows, Of)
    assert [g.tolist() for g in got] == [w.tolist() for w in want]
    assert len(set(got[0].tolist())) > 1  # the other terms still tell the rows apart
