"""The blocking-pair test for many pairs at once.

What an offer holds is a greedy choice, so choosing again from it plus a project p keeps all of
it up to p's place in the offer's order; p is kept exactly when the capacity and the deals left
after the projects the offer prefers to p still admit p. For a batch of (project, offer) pairs
that is a prefix sum over each offer's holdings: sort holdings and queries together by (offer,
key) and read the running totals where each query lands."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


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
