"""Compiled kernels of deferred acceptance and of the blocking-pair test (numba, over arrays).

The state they work on (`acceptance.py` owns it): per project `ptr` (how far down its list it
proposed) and `assign` (the offer it holds, -1 for none); per offer `room` and `slots` (the
capacity and deals left) and its holdings, a sorted run of (key, project, amount, place) in the
`h*` arrays at `hstart[o]` (`hn[o]` of `hcap[o]` used; a full run moves to the end of the arrays
with twice the room); the preference lists as runs of a pool (`start`, `length`, `complete`,
`pool_o`, `pool_f`: offers and the funder's scores); every proposal as an entry of a linked list
per offer (`e_*`, newest first from `e_head[o]`), read back as the offer's applicants.

A kernel that runs out of room (the holdings' or the applicants' arrays, or a preference list
that must be lengthened) stops before it changes anything and says why (`status`, `what`); the
caller grows the arrays or lengthens the list and calls it again with the queue left. The
semantics are exactly those of the Python loop they replace (documented in `acceptance.py`)."""

from matching.domain.kernels.applicants import among, applicants, compact_applicants
from matching.domain.kernels.lists import lists_differ
from matching.domain.kernels.primitives import (
    APPS_FULL,
    DONE,
    EXTEND,
    HELD_FULL,
    KEY_BITS,
    LIMIT,
)
from matching.domain.kernels.proposing import run

__all__ = [
    "APPS_FULL",
    "DONE",
    "EXTEND",
    "HELD_FULL",
    "KEY_BITS",
    "LIMIT",
    "among",
    "applicants",
    "compact_applicants",
    "lists_differ",
    "run",
]
