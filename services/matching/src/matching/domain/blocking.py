"""The blocking-pair test for many pairs at once.

What an offer holds is a greedy choice, so choosing again from it plus a project p keeps all of
it up to p's place in the offer's order; p is kept exactly when the capacity and the deals left
after the projects the offer prefers to p still admit p. For a batch of (project, offer) pairs
that is a prefix sum over each offer's holdings: sort holdings and queries together by (offer,
key) and read the running totals where each query lands."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from matching.domain.acceptance import Acceptance, Pairs

I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
KEY_BITS = 31  # a key: (2^31 - the funder's score) << 31 | the rank of the project's id


def kept(
    held_offer: I64,
    held_key: I64,
    held_amount: I64,
    q_offer: I64,
    q_key: I64,
    q_amount: I64,
    cap: I64,
    deals: I64,
) -> B:
    """For each query (offer, key, amount): would the offer, choosing greedily (lower key
    first) from its holdings plus this project, keep it? `cap` and `deals` per offer row; keys
    of holdings and queries never tie (they end in the project's id rank)."""
    nh = held_offer.size
    all_o, all_k = np.r_[held_offer, q_offer], np.r_[held_key, q_key]
    is_held = np.r_[np.ones(nh, dtype=np.int64), np.zeros(q_offer.size, dtype=np.int64)]
    amount = np.r_[held_amount, np.zeros(q_offer.size, dtype=np.int64)]
    order = np.lexsort((all_k, all_o))
    so, sh, sa = all_o[order], is_held[order], amount[order]
    count_before, amount_before = np.cumsum(sh) - sh, np.cumsum(sa) - sa
    start = np.r_[True, so[1:] != so[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(so.size), 0))
    count_before -= count_before[first]
    amount_before -= amount_before[first]
    at = np.empty_like(order)
    at[order] = np.arange(order.size)
    at = at[nh:]  # where each query landed
    room = cap[q_offer] - amount_before[at]
    keeps: B = (room >= q_amount) & (deals[q_offer] - count_before[at] > 0)
    return keeps


def among(
    s: Acceptance, projects: Iterable[int], offers: Iterable[int] = (), pairs: Pairs | None = None
) -> Pairs:
    """The blocking pairs of the state `s` among all preferred offers of `projects`, all
    applicants of `offers` and the given `pairs`: {(p, o): place of o in p's list}.

    This runs after every repair round and every try of `settle`, on the applicants of every
    offer that let someone go (hundreds of thousands of candidates in the first rounds at
    100,000 × 10,000): the applicants' candidates stay numpy arrays (their place and funder's
    score are packed in one integer), only the lists' ones are gathered in Python."""
    lists_o, lists_f = s.lists.offers, s.lists.scores
    given = pairs or {}
    qp = [p for p, _ in given]
    qo = [o for _, o in given]
    qj = list(given.values())
    upto, seen = s.upto, set[int]()
    for p in projects:
        n = upto(p)
        if n > 0:
            seen.add(p)
            qp += [p] * n
            qo += lists_o[p][:n]
            qj += range(n)
    qf = [lists_f[p][j] for p, j in zip(qp, qj, strict=True)]
    i64 = np.int64
    p_, o_, j_, f_ = (np.asarray(x, dtype=i64) for x in (qp, qo, qj, qf))
    offers = list(offers)
    if offers:
        asked = [s.applicants.get(o, {}) for o in offers]
        sizes = [len(ap) for ap in asked]
        total = sum(sizes)
        a_p = np.fromiter((p for ap in asked for p in ap), dtype=i64, count=total)
        a_v = np.fromiter((v for ap in asked for v in ap.values()), dtype=i64, count=total)
        a_o = np.repeat(np.asarray(offers, dtype=i64), sizes)
        a_j = a_v >> KEY_BITS
        up = np.zeros(len(s.rank), dtype=i64)
        if a_p.size > len(s.rank) // 8:  # many: all at once
            up[list(s.ptr)] = list(s.ptr.values())
            up[list(s.assign)] -= 1
        else:  # a few (a run after one change): only them (`upto` written out)
            mine = np.unique(a_p).tolist()
            ptr_of, assign = s.ptr.get, s.assign
            up[mine] = [ptr_of(p, 0) - (p in assign) for p in mine]
        up[list(seen)] = 0  # already asked above
        hit = a_j < up[a_p]
        p_, o_, j_ = np.r_[p_, a_p[hit]], np.r_[o_, a_o[hit]], np.r_[j_, a_j[hit]]
        f_ = np.r_[f_, a_v[hit] & ((1 << KEY_BITS) - 1)]
    if p_.size == 0:
        return {}
    if not s.arrays:
        s.arrays = [np.asarray(x, dtype=i64) for x in (s.rank, s.amount, s.tmax, s.cap, s.deals)]
    rank, amount, tmax, cap, deals = s.arrays
    got, none = s.held.get, ()
    held = [(o, x) for o in np.unique(o_).tolist() for x in got(o, none)]
    hit = kept(
        np.asarray([o for o, _ in held], dtype=i64),
        np.asarray([x[0] for _, x in held], dtype=i64),
        np.asarray([x[2] for _, x in held], dtype=i64),
        o_,
        ((1 << KEY_BITS) - f_) << KEY_BITS | rank[p_],
        np.minimum(amount[p_], tmax[o_]),
        cap,
        deals,
    )
    at = np.flatnonzero(hit)
    return dict(
        zip(
            zip(p_[at].tolist(), o_[at].tolist(), strict=True),
            j_[at].tolist(),
            strict=True,
        )
    )
