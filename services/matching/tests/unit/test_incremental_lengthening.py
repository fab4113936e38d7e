"""The allocation kept between runs must not depend on how its preference lists happened to be
lengthened: which rows were lengthened together (`preferences.BATCH`), how deep
(`MIN_DEPTH`), and whether a lengthened list a change cannot reach before the project's place
is cut there or read again (`rewind._ahead`). Lengthening only reveals more of the same order,
so with mixed amounts too (where the order of proposals decides the outcome) every run must
make the same proposals and end in the same allocation under any of these."""

from __future__ import annotations

from contextlib import ExitStack
from unittest.mock import patch

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from matching.domain import preferences, rewind
from matching.domain.acceptance import Acceptance
from matching.domain.engine import MatchEngine
from matching.domain.market import MarketAllocation
from matching.domain.preferences import SnapshotLists
from matching.domain.snapshot import MarketSnapshot
from matching.domain.topcache import I64, B
from services.matching.tests.unit.factories import AS_OF
from services.matching.tests.unit.test_incremental_allocation import (
    SETTINGS,
    Op,
    apply,
    histories,
)


def _read_all_again(
    s: Acceptance, lists: SnapshotLists, m: MarketSnapshot, h: rewind.Hit, changed: I64
) -> B:
    every: B = np.ones(h.rows.size, dtype=bool)
    return every


def other_lengthening() -> ExitStack:
    """One row lengthened at a time, as shallow as can be, every hit list read again."""
    stack = ExitStack()
    stack.enter_context(patch.object(preferences, "BATCH", 1))
    stack.enter_context(patch.object(preferences, "MIN_DEPTH", 3))
    stack.enter_context(patch.object(rewind, "MIN_DEPTH", 3))
    stack.enter_context(patch.object(rewind, "_ahead", _read_all_again))
    return stack


@SETTINGS
@given(histories(equal=False), st.integers(1, 3))
def test_the_kept_allocation_does_not_depend_on_how_lists_were_lengthened(
    ops: list[Op], every: int
) -> None:
    e = MatchEngine(AS_OF, top_k=2, depth=3, pref_depth=2)
    a, b = MarketAllocation(), MarketAllocation()
    for i, op in enumerate(ops):
        apply(e, op)
        if i % every == 0 or i == len(ops) - 1:
            snap = e.snapshot()
            got = a(snap)
            with other_lengthening():
                other = b(snap)
            assert got.assignments == other.assignments
            assert got.blocking_pairs == other.blocking_pairs
            assert got.proposals_made == other.proposals_made, (a.mode, b.mode)
            e.adopt(got)
