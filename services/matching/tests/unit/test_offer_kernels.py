"""One offer against every project, compiled (`offerkernels`), against the numpy formulas it
replaces: random columns with unknowns (NaN), inactive rows, empty sides; and an offer's places
in given rows of a top list."""

from __future__ import annotations

import numpy as np
import pytest

from matching.domain import eligibility
from matching.domain.columns import CITIES, SECTORS, STAGES, Cols
from matching.domain.offerkernels import eligible_rows, entering, moves, places, warm_up
from matching.domain.topcache import TopCache
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


def _numpy_moves(rows, bo, bk, ao, ak):  # type: ignore[no-untyped-def]
    """The numpy formula `moves` replaced (`MarketState._diff`'s before)."""
    moved = np.flatnonzero((ao != bo).any(axis=1) | (ak != bk).any(axis=1))
    rows, ao, ak, bo, bk = rows[moved], ao[moved], ak[moved], bo[moved], bk[moved]
    same = ao[:, :, None] == bo[:, None, :]
    added = (ao >= 0) & ~same.any(axis=2)
    removed = (bo >= 0) & ~same.any(axis=1)
    old_key = np.where(same, bk[:, None, :], 0).sum(axis=2)
    changed = (ao >= 0) & same.any(axis=2) & (old_key != ak)
    out = []
    for mask, offs in ((added, ao), (removed, bo), (changed, ao)):
        r, c = np.nonzero(mask)
        out.append((rows[r].tolist(), offs[r, c].tolist()))
    return tuple(out)


def _tops(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    off, key = np.full((n, k), -1, np.int64), np.full((n, k), -1, np.int64)
    for r in range(n):
        c = int(rng.integers(0, k + 1))
        off[r, :c] = rng.choice(12, c, replace=False)
        key[r, :c] = np.sort(rng.integers(0, 5, c))[::-1]
    return off, key


@pytest.mark.parametrize("seed", range(10))
def test_moves_are_the_numpy_diff_in_its_order(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(0, 60)), int(rng.integers(1, 8))
    rows = rng.permutation(1000)[:n].astype(np.int64)
    bo, bk = _tops(rng, n, k)
    ao, ak = _tops(rng, n, k)
    keep = rng.random(n) < 0.4  # rows that did not move at all
    ao[keep], ak[keep] = bo[keep], bk[keep]
    shift = rng.random(n) < 0.2  # same offers, other keys
    ao[shift], ak[shift] = bo[shift], np.where(bo[shift] >= 0, bk[shift] + 1, -1)
    got = moves(rows, bo, bk, ao, ak)
    assert got == _numpy_moves(rows, bo, bk, ao, ak)
    assert sum(len(r) for r, _ in got) > 0 or n == 0 or keep.all()


def _numpy_insert(cache: TopCache, rows, offer, keys, aux, ids):  # type: ignore[no-untyped-def]
    """`TopCache.insert` as numpy did it (ties by comparing the offers' ids)."""
    d, listed = cache.depth, cache.key[rows]
    pos = (listed > keys[:, None]).sum(axis=1)
    same = (listed == keys[:, None]) & (np.arange(d) < cache.count[rows][:, None])
    tied_before = np.vectorize(lambda o: (ids[o] or "") < ids[offer], otypes=[bool])
    pos += (same & tied_before(np.maximum(cache.off[rows], 0))).sum(axis=1)
    cnt, exh = cache.count[rows], cache.exhaustive[rows]
    put = (pos < cnt) | (exh & (cnt < d))
    cache.exhaustive[rows[exh & ~put]] = False
    for r, p, k, a in zip(rows[put], pos[put], keys[put], aux[put], strict=True):
        cache.off[r, p + 1 :] = cache.off[r, p:-1].copy()
        cache.key[r, p + 1 :] = cache.key[r, p:-1].copy()
        cache.aux[r, p + 1 :] = cache.aux[r, p:-1].copy()
        cache.off[r, p], cache.key[r, p], cache.aux[r, p] = offer, k, a
        if cache.count[r] == d:
            cache.exhaustive[r] = False
        cache.count[r] = min(cache.count[r] + 1, d)
    return rows[put]


@pytest.mark.parametrize("seed", range(10))
def test_insert_is_the_numpy_insert_ties_by_id(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, d, m = 40, int(rng.integers(1, 7)), 30
    ids = [f"o-{x:03d}" for x in rng.permutation(m)]  # id order unlike row order
    rank = np.argsort(np.argsort(ids)).astype(np.int64)
    caches = TopCache(d, n), TopCache(d, n)
    for r in range(n):  # sorted lists of offers 0..m-2 with few distinct keys (many ties)
        c = int(rng.integers(0, d + 1))
        offs = rng.choice(m - 1, c, replace=False)
        keys = rng.integers(0, 4, c)
        order = sorted(range(c), key=lambda i: (-keys[i], ids[offs[i]]))
        aux, exhaustive = rng.integers(0, 9, c), bool(rng.random() < 0.5) or c < d
        for cache in caches:
            cache.off[r, :c], cache.key[r, :c] = offs[order], keys[order]
            cache.aux[r, :c], cache.count[r], cache.exhaustive[r] = aux, c, exhaustive
    rows = np.flatnonzero(rng.random(n) < 0.7).astype(np.int64)
    keys, aux = rng.integers(0, 4, rows.size), rng.integers(0, 9, rows.size)
    want = _numpy_insert(caches[0], rows, m - 1, keys, aux, ids)
    got = caches[1].insert(rows, m - 1, keys, aux, rank)
    assert got.tolist() == want.tolist()
    for a in ("off", "key", "aux", "count", "exhaustive"):
        assert getattr(caches[1], a).tolist() == getattr(caches[0], a).tolist(), a
