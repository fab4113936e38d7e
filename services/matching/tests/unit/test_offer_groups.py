"""`OfferGroups.changed`: the live offers' columns and groups updated in place after offer rows
changed are those built again from the changed columns (the allocation lengthens preference
lists from them between snapshots)."""

from __future__ import annotations

import numpy as np
import pytest

from matching.domain.columns import Cols
from matching.domain.pairs import OfferGroups

AS_OF = 740_000


def offers(rng: np.random.Generator, m: int) -> Cols:
    return {
        "active": rng.random(m) < 0.9,
        "valid_from": AS_OF - rng.integers(0, 5, m),
        "valid_until": AS_OF + rng.integers(0, 5, m),
        "deals_left": rng.integers(1, 4, m),
        "cap": rng.integers(1, 60, m) * 1_000_000,
        "city_mask": rng.integers(1, 1 << 4, m),
        "sector_mask": rng.integers(1, 1 << 3, m),
        "stage_mask": rng.integers(1, 1 << 3, m),
        "rate": np.where(rng.random(m) < 0.3, np.nan, rng.random(m)),
    }


def projects(rng: np.random.Generator, n: int) -> Cols:
    return {
        "city_bit": 1 << rng.integers(0, 4, n),
        "sector_bit": 1 << rng.integers(0, 3, n),
        "stage_bit": 1 << rng.integers(0, 3, n),
    }


def covered(og: OfferGroups, P: Cols) -> dict[int, tuple[list[int], dict[str, list[float]]]]:
    out = {}
    for row in range(P["city_bit"].size):
        g = int(P["city_bit"][row] | P["sector_bit"][row] << 16 | P["stage_bit"][row] << 32)
        cand, Oc = og.covering(P, row, g)
        out[g] = (
            og.live[cand].tolist(),
            {k: np.nan_to_num(v, nan=-1).tolist() for k, v in Oc.items()},
        )
    return out


@pytest.mark.parametrize("seed", range(20))
def test_changed_offers_in_place_equal_the_groups_built_again(seed: int) -> None:
    rng = np.random.default_rng(seed)
    O0, P = offers(rng, 60), projects(rng, 40)
    og = OfferGroups.of(O0, AS_OF)
    covered(og, P)  # every group made before the change
    rows = np.sort(rng.choice(60, size=int(rng.integers(1, 4)), replace=False)).astype(np.int64)
    O2 = {k: v.copy() for k, v in O0.items()}
    new = offers(rng, 60)
    for k in ("cap", "city_mask", "sector_mask", "stage_mask", "rate"):
        if rng.random() < 0.5:  # some columns of these rows change, the live ones may not
            O2[k][rows] = new[k][rows]
    if rng.random() < 0.3:
        O2["cap"][rows[0]] = 0  # no longer live: built again
    got = og.changed(O2, AS_OF, rows)
    again = OfferGroups.of(O2, AS_OF)
    if got is None:
        assert not np.array_equal(again.live, og.live)
        return
    assert np.array_equal(got.live, again.live)
    assert covered(got, P) == covered(again, P)
