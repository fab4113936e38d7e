"""One offer against every project, compiled (`offerkernels`), against the numpy formulas it
replaces: random columns with unknowns (NaN), inactive rows, empty sides; and an offer's places
in given rows of a top list."""

from __future__ import annotations

import numpy as np
import pytest

from matching.domain import eligibility
from matching.domain.columns import CITIES, SECTORS, STAGES, Cols
from matching.domain.offerkernels import eligible_rows, entering, places, warm_up
from services.matching.tests.unit.test_pair_kernels import AS_OF, columns


def _with_categories(rng: np.random.Generator, P: Cols, Of: Cols) -> tuple[Cols, Cols]:
    n, m = P["amount"].size, Of["tmin"].size
    P = {
        **P,
        "active": rng.random(n) < 0.9,
        "city_bit": 1 << rng.integers(0, len(CITIES), n),
        "sector_bit": 1 << rng.integers(0, len(SECTORS), n),
        "stage_bit": 1 << rng.integers(0, len(STAGES), n),
    }
    Of = {
        **Of,
        "city_mask": rng.integers(1, 1 << len(CITIES), m),
        "sector_mask": rng.integers(1, 1 << len(SECTORS), m),
        "stage_mask": rng.integers(1, 1 << len(STAGES), m),
    }
    return P, Of


@pytest.mark.parametrize("seed", range(12))
def test_eligible_rows_are_the_numpy_rules(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(0, 400)), 24
    P, Of = _with_categories(rng, *columns(rng, n, m))
    warm_up()
    for j in range(m):
        O1 = {k: v[j : j + 1] for k, v in Of.items()}
        want = eligibility.categorical(P, O1) & P["active"] & eligibility.numeric(P, O1, AS_OF)
        got = eligible_rows(P, O1, AS_OF)
        assert got.tolist() == np.flatnonzero(want).tolist()


def test_places_finds_each_listing_of_the_offer_in_the_given_rows_only() -> None:
    rng = np.random.default_rng(7)
    off = np.full((50, 6), -1, np.int32)
    for r in range(50):
        k = int(rng.integers(0, 7))
        off[r, :k] = rng.choice(20, k, replace=False)
    rows = np.arange(0, 50, 2, dtype=np.int64)
    for offer in range(20):
        r, c = places(off, rows, offer)
        want_r, want_c = np.nonzero(off[rows] == offer)
        assert r.tolist() == rows[want_r].tolist()
        assert c.tolist() == want_c.tolist()


def test_entering_is_the_numpy_candidates_rule() -> None:
    rng = np.random.default_rng(3)
    key = np.sort(rng.integers(0, 50, (40, 5)), axis=1)[:, ::-1].copy()
    count = rng.integers(0, 6, 40)
    exhaustive = rng.random(40) < 0.3
    rows = rng.integers(0, 40, 200)
    keys = rng.integers(0, 55, 200)
    cnt = count[rows]
    last = np.where(cnt > 0, key[rows, np.maximum(cnt - 1, 0)], np.iinfo(np.int64).max)
    want = exhaustive[rows] | (keys >= last)
    assert entering(key, count, exhaustive, rows, keys).tolist() == want.tolist()
