"""What changed between two market snapshots, as the allocation sees it (numpy, no state).

A project row changed when its id, amount or liveness did, or its cached preference list (the
offers, the funder's scores, how many, whether complete); an offer row when its id or any of
its terms did (`reset`), or only its capacity or deals left (`recap`; `grew` when either rose)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from matching.domain import kernels
from matching.domain.columns import Cols
from matching.domain.snapshot import MarketSnapshot
from matching.domain.topcache import I64, B

CAPACITY = ("cap", "deals_left")


@dataclass(frozen=True)
class Changes:
    projects: I64  # rows whose project changed, came or went
    reset: I64  # offer rows whose offer changed, came or went
    recap: I64  # offer rows whose capacity or deals left changed, and nothing else
    grew: I64  # those of `recap` whose capacity or deals left rose
    shrunk: I64  # project rows, not in `projects`, whose cached list only got shorter

    @property
    def size(self) -> int:
        return int(self.projects.size + self.reset.size + self.recap.size)


def _differs(a: npt.NDArray[np.generic], b: npt.NDArray[np.generic]) -> B:
    if a.ndim > 1:
        out: B = (a != b).any(axis=tuple(range(1, a.ndim)))
        return out
    if np.issubdtype(a.dtype, np.floating):
        same: B = (a == b) | (np.isnan(a) & np.isnan(b))
        return ~same
    diff: B = a != b
    return diff


def ids(values: tuple[str | None, ...]) -> npt.NDArray[np.object_]:
    """Ids as an array, to compare in one step (rows may be reused by another id)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def same_ids(old: tuple[str | None, ...], new: tuple[str | None, ...], rows: I64) -> B:
    """For each row (below both lengths): is its id the same in both? (Mostly all are: one
    comparison of the tuples then, not two object arrays of 100,000 ids.)"""
    k = min(len(old), len(new))
    if old[:k] == new[:k]:
        out: B = np.ones(rows.size, dtype=bool)
        return out
    same: B = ids(old[:k])[rows] == ids(new[:k])[rows]
    return same


def _rows(
    old: Cols,
    new: Cols,
    old_ids: tuple[str | None, ...],
    new_ids: tuple[str | None, ...],
    keys: Iterable[str],
) -> tuple[B, int]:
    """Which rows differ in these columns or ids; rows beyond the old table's size all do."""
    n_old, n = len(old_ids), len(new_ids)
    k = min(n_old, n)
    out = np.ones(n, dtype=bool)
    diff: B = np.zeros(k, dtype=bool)
    if old_ids[:k] != new_ids[:k]:  # (mostly equal: one comparison of the tuples)
        diff = ids(old_ids[:k]) != ids(new_ids[:k])
    for name in keys:
        diff |= _differs(old[name][:k], new[name][:k])
    out[:k] = diff
    return out, k


def _lists_differ(old: MarketSnapshot, new: MarketSnapshot, k: int) -> tuple[B, B]:
    """Rows [0, k) whose cached list changed as the allocation reads it, and rows whose list
    only got shorter. The allocation holds a prefix of each project's true list, so a list that
    only grew (the old one not complete) still holds; one that only got shorter holds as far as
    the new one goes (an offer came and went and pushed the last entry out, say)."""
    differ, shrunk = kernels.lists_differ(
        k,
        old.pref_count,
        new.pref_count,
        old.pref_off,
        new.pref_off,
        old.pref_aux,
        new.pref_aux,
        old.pref_complete,
        new.pref_complete,
    )
    return differ, shrunk


def between(old: MarketSnapshot, new: MarketSnapshot) -> Changes:
    terms = [name for name in new.offers if name not in CAPACITY]
    o_diff, k = _rows(old.offers, new.offers, old.offer_ids, new.offer_ids, terms)
    cap_diff = np.zeros_like(o_diff)
    grew = np.zeros_like(o_diff)
    for name in CAPACITY:
        a, b = old.offers[name][:k], new.offers[name][:k]
        cap_diff[:k] |= a != b
        grew[:k] |= b > a
    o_diff[k:] &= new.offers["active"][k:]  # rows beyond: only live ones (not came and went)
    recap = cap_diff & ~o_diff
    P0, P1 = old.projects, new.projects
    p_diff, k = _rows(P0, P1, old.project_ids, new.project_ids, ("amount", "active"))
    differ, shrunk = _lists_differ(old, new, k)
    p_diff[:k] |= differ
    p_diff &= np.r_[np.ones(k, dtype=bool), P1["active"][k:]]  # new rows: only live ones
    gone_or_live = P1["active"] | np.r_[P0["active"][:k], np.zeros(p_diff.size - k, dtype=bool)]
    p_diff &= gone_or_live
    return Changes(
        projects=np.flatnonzero(p_diff).astype(np.int64),
        reset=np.flatnonzero(o_diff).astype(np.int64),
        recap=np.flatnonzero(recap).astype(np.int64),
        grew=np.flatnonzero(recap & grew).astype(np.int64),
        shrunk=np.flatnonzero(np.r_[shrunk & ~p_diff[:k], np.zeros(p_diff.size - k, bool)]),
    )
