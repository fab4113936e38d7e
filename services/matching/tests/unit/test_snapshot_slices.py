"""The snapshot copied in slices (the refresher yields the event loop between them) is the copy
made in one go, of one market version: a change between slices starts the copy over, and a
change at every slice ends in the one-go copy after a bounded number of slices."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from matching.domain.engine import MatchEngine
from matching.domain.snapshot import MarketSnapshot
from services.matching.tests.unit.factories import AS_OF
from services.matching.tests.unit.test_incremental_allocation import (
    SETTINGS,
    Op,
    a_project,
    apply,
    histories,
)


def same(a: MarketSnapshot, b: MarketSnapshot) -> None:
    for f in fields(MarketSnapshot):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, dict):
            assert x.keys() == y.keys(), f.name
            for k in x:
                assert x[k].dtype == y[k].dtype and np.array_equal(x[k], y[k], equal_nan=True), k
        elif isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y), f.name
        else:
            assert x == y, f.name


def played(ops: list[Op]) -> MatchEngine:
    e = MatchEngine(AS_OF)
    for op in ops:
        apply(e, op)
    return e


@SETTINGS
@given(histories(equal=False), st.integers(1, 3))
def test_slices_copy_what_one_go_copies(ops: list[Op], rows: int) -> None:
    e = played(ops)
    steps = list(e.market.snapshot_in_slices(rows))
    n = int(e.market.projects.size)
    assert steps[:-1] == [None] * (len(steps) - 1) and len(steps) == max(-(-n // rows), 1)
    last = steps[-1]
    assert last is not None
    same(last, e.snapshot())


@SETTINGS
@given(histories(equal=False), st.integers(0, 11))
def test_a_change_between_slices_starts_the_copy_over(ops: list[Op], i: int) -> None:
    e = played(ops)
    steps = e.market.snapshot_in_slices(1)
    first = next(steps)
    if first is not None:  # one slice only: nothing can come between
        return
    apply(e, ("project", a_project(i, "wuhu", 42_000_000, 20_000_000)))
    at = e.version
    *between, last = list(steps)
    assert all(s is None for s in between) and last is not None
    assert last.version == at  # of the version after the change, not a mix of both
    same(last, e.snapshot())


def test_a_change_at_every_slice_ends_in_one_go() -> None:
    e = played([("project", a_project(i, "shanghai", 42_000_000, 20_000_000)) for i in range(6)])
    steps, yields = e.market.snapshot_in_slices(1), 0
    for step in steps:
        if step is not None:
            break
        yields += 1
        apply(e, ("project", a_project(yields % 2, "jiaxing", 9_000_000, 5_000_000)))
    assert step is not None and step.version == e.version
    assert yields == 2  # two tries, each left after its first slice; then the one-go copy
    same(step, e.snapshot())
