"""Stability of a deferred-acceptance state (`Acceptance`): an offer's applicants that prefer
it to what they hold, the projects whose rejections no longer hold once offers gained room
(`unsettle`), and the blocking pairs among many candidates at once (`blocking`, compiled:
`kernels.among`)."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain

import numpy as np

from matching.domain import kernels
from matching.domain.acceptance import Acceptance, Pairs
from matching.domain.topcache import I64


def applicants(s: Acceptance, o: int) -> tuple[I64, I64]:
    """o's applicants that prefer it to what they hold: (projects, places)."""
    L = s.lists
    stamp = np.full(s.ptr.size, -1, np.int64)
    ps, js = kernels.applicants(
        o,
        s.ptr,
        s.assign,
        L.start,
        L.length,
        L.pool_o,
        s.e_p,
        s.e_j,
        s.e_next,
        s.e_head,
        stamp,
    )
    return ps, js


def unsettle(s: Acceptance, opened: set[int], limit: int) -> set[int] | None:
    """Offers in `opened` gained room: the projects they rejected that are worse off now may
    be kept there. Those projects, and transitively the projects rejected by the offers they
    would leave, must propose again from the top (deferred acceptance from a state whose
    every rejection still holds gives the batch result). None if more than `limit` would."""
    out, stack = set[int](), sorted(opened, reverse=True)
    seen = set(opened)
    while stack:
        o = stack.pop()
        for p in applicants(s, o)[0].tolist():
            if p in out:
                continue
            out.add(p)
            if len(out) > limit:
                return None
            mine = int(s.assign[p])
            if mine >= 0 and mine not in seen:
                seen.add(mine)
                stack.append(mine)
    return out


def blocking(
    s: Acceptance, projects: Iterable[int], offers: Iterable[int] = (), pairs: Pairs | None = None
) -> Pairs:
    """The blocking pairs among all preferred offers of `projects`, all applicants of
    `offers` and the given `pairs`: {(p, o): place of o in p's list}."""
    given = pairs or {}
    n = len(given)
    po = np.fromiter(chain.from_iterable(given), np.int64, 2 * n).reshape(n, 2)
    gj = np.fromiter(given.values(), np.int64, n)
    return among(s, np.fromiter(projects, np.int64), np.fromiter(offers, np.int64), po, gj)


def among(s: Acceptance, projects: I64, offers: I64, po: I64, gj: I64) -> Pairs:
    """`blocking` with the given pairs as arrays: rows (p, o) of `po`, places `gj`."""
    L = s.lists
    bp, bo, bj = kernels.among(
        projects,
        np.unique(offers),
        np.ascontiguousarray(po[:, 0]),
        np.ascontiguousarray(po[:, 1]),
        gj,
        s.ptr,
        s.assign,
        L.start,
        L.length,
        L.pool_o,
        L.pool_f,
        s.amount,
        s.tmax,
        s.rank,
        s.cap,
        s.deals,
        s.hstart,
        s.hn,
        s.hk,
        s.ha,
        s.e_p,
        s.e_j,
        s.e_a,
        s.e_f,
        s.e_next,
        s.e_head,
    )
    return dict(zip(zip(bp.tolist(), bo.tolist(), strict=True), bj.tolist(), strict=True))
