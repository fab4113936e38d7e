"""The compiled deferred acceptance (`kernels`) on its edge cases, against the brute-force
definition of blocking pairs (`test_allocation.blocking`): ties in the funders' scores, offers
without capacity or deals, amounts larger than every capacity, projects with empty lists; and
with arrays so small that every growth path runs (an offer's holdings moved to the end of the
arrays, the arrays grown, the applicants compacted), which must not change the outcome."""

from __future__ import annotations

import random
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.domain import acceptance, kernels, stability
from matching.domain.allocation import Acceptance, Result, repair, result, settle
from services.matching.tests.unit.test_allocation import Instance, Lists, blocking, run


@st.composite
def edgy(draw: st.DrawFn) -> Instance:
    n_p, n_o = draw(st.integers(1, 7)), draw(st.integers(1, 3))
    amount = [draw(st.sampled_from([1, 2, 3, 9])) for _ in range(n_p)]  # 9: beyond every cap
    cap = [draw(st.sampled_from([0, 4, 6, 8])) for _ in range(n_o)]
    deals = [draw(st.sampled_from([0, 1, 2, 9])) for _ in range(n_o)]
    lists = {p: draw(st.permutations(range(n_o)))[: draw(st.integers(0, n_o))] for p in range(n_p)}
    f = {(p, o): draw(st.integers(0, 1)) for p in range(n_p) for o in range(n_o)}  # ties
    return amount, cap, deals, lists, f


def _tiny(inst: Instance) -> Result:
    """The same run with arrays of one slot: every growth path of the kernels runs."""
    with patch.object(acceptance, "HELD", 1), patch.object(acceptance, "APPS", 1):
        return run(inst)


def _check(inst: Instance, r: Result) -> None:
    amount, cap, deals, lists, _ = inst
    assert sorted(r.blocking) == blocking(inst, r.assignment)
    for o in range(len(cap)):
        mine = [p for p, x in r.assignment.items() if x == o]
        assert sum(amount[p] for p in mine) <= cap[o] and len(mine) <= deals[o]
    assert all(o in lists[p] for p, o in r.assignment.items())
    assert all(amount[p] <= cap[o] for p, o in r.assignment.items())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edgy())
def test_edge_cases_against_the_definition_whatever_the_array_sizes(inst: Instance) -> None:
    r, tiny = run(inst), _tiny(inst)
    _check(inst, r)
    assert tiny.assignment == r.assignment and tiny.blocking == r.blocking
    assert (tiny.rounds, tiny.proposals) == (r.rounds, r.proposals)


def test_equal_scores_go_to_the_lower_project_id_in_every_offer() -> None:
    """Ties everywhere: each offer keeps the lowest ids that fit, in id order."""
    inst: Instance = ([2] * 6, [4, 4], [9, 9], {p: [0, 1] for p in range(6)}, {})
    inst[4].update({(p, o): 7 for p in range(6) for o in range(2)})
    assert run(inst).assignment == {0: 0, 1: 0, 2: 1, 3: 1}


def test_nothing_fits_anywhere() -> None:
    inst: Instance = ([9, 9], [8, 0], [9, 9], {0: [0, 1], 1: [1, 0]}, {})
    inst[4].update({(p, o): 1 for p in range(2) for o in range(2)})
    r = run(inst)
    assert r.assignment == {} and r.stable and r.proposals == 4


def test_repair_and_settle_with_tiny_arrays_give_the_same_allocation() -> None:
    """Mixed amounts on larger instances: the repair's moves and settle's undone tries restore
    the holdings' runs by copy, also after a run moved or the arrays grew."""
    rng, tried = random.Random(11), 0
    for _ in range(150):
        n_p, n_o = rng.randint(20, 40), rng.randint(3, 6)
        amount = [rng.randint(1, 5) for _ in range(n_p)]
        cap = [rng.randint(4, 12) for _ in range(n_o)]
        deals = [rng.choice([9, 3, 2]) for _ in range(n_o)]
        lists = {p: rng.sample(range(n_o), rng.randint(1, n_o)) for p in range(n_p)}
        f = {(p, o): rng.randint(0, 100) for p in range(n_p) for o in range(n_o)}
        inst: Instance = (amount, cap, deals, lists, f)
        out = []
        for held, apps in ((4096, 1 << 16), (1, 1)):
            with patch.object(acceptance, "HELD", held), patch.object(acceptance, "APPS", apps):
                s = Acceptance(Lists(lists, f), amount, [10**9] * n_o, cap, deals, range(n_p))
                s.run(range(n_p))
                rounds = repair(s, stability.blocking(s, range(n_p)), 8, 3)
                r = result(s, settle(s, rounds.pairs, 10_000, per_try=50), rounds.rounds)
                _check(inst, r)
                out.append((r.assignment, r.blocking, r.proposals))
        tried += bool(out[0][1]) or rounds.rounds > 0
        assert out[0] == out[1]
    assert tried > 10


def _lists_differ_numpy(k, c0, c1, o0, o1, f0, f1, x0, x1):  # type: ignore[no-untyped-def]
    """The masks `changes` computed before the kernel (the reference)."""
    common = np.arange(o0.shape[1])[None, :] < np.minimum(c0[:k], c1[:k])[:, None]
    out = (((o0[:k] != o1[:k]) | (f0[:k] != f1[:k])) & common).any(axis=1)
    out |= x0[:k] & ((c1[:k] > c0[:k]) | ~x1[:k])
    out |= x1[:k] & (c1[:k] < c0[:k])
    return out, ~out & (c1[:k] < c0[:k])


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6), st.integers(0, 4), st.integers(0, 2**32 - 1))
def test_changed_lists_are_those_of_the_masks(rows: int, width: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    c0, c1 = (rng.integers(0, width + 1, rows) for _ in range(2))
    o0, f0 = (rng.integers(0, 3, (rows, width)) for _ in range(2))
    o1 = np.where(rng.random((rows, width)) < 0.2, rng.integers(0, 3, (rows, width)), o0)
    f1 = np.where(rng.random((rows, width)) < 0.2, rng.integers(0, 3, (rows, width)), f0)
    x0, x1 = (rng.random(rows) < 0.5 for _ in range(2))
    args = (rng.integers(0, rows + 1), c0, c1, o0, o1, f0, f1, x0, x1)
    got, want = kernels.lists_differ(*args), _lists_differ_numpy(*args)
    assert got[0].tolist() == want[0].tolist() and got[1].tolist() == want[1].tolist()


@pytest.mark.parametrize("apps", [1 << 16, 1])
def test_the_offers_applicants_give_every_blocking_pair_of_the_definition(apps: int) -> None:
    """`stability.among` over every offer's applicants (no project given) passes over the
    entries that cannot fit from the amount and score they carry: what it finds must still be
    every blocking pair, after deferred acceptance and after repair moved projects up their
    lists (tiny arrays: the entries' amounts and scores survive the compaction)."""
    rng, found = random.Random(5), 0
    for _ in range(120):
        n_p, n_o = rng.randint(8, 30), rng.randint(2, 5)
        amount = [rng.randint(1, 6) for _ in range(n_p)]
        cap = [rng.randint(3, 14) for _ in range(n_o)]
        deals = [rng.choice([9, 3, 2, 1]) for _ in range(n_o)]
        lists = {p: rng.sample(range(n_o), rng.randint(1, n_o)) for p in range(n_p)}
        f = {(p, o): rng.randint(0, 6) for p in range(n_p) for o in range(n_o)}  # ties
        inst: Instance = (amount, cap, deals, lists, f)
        with patch.object(acceptance, "APPS", apps):
            s = Acceptance(Lists(lists, f), amount, [10**9] * n_o, cap, deals, range(n_p))
            s.run(range(n_p))
            for _ in range(2):
                want = blocking(inst, s.assignment())
                got = stability.blocking(s, (), range(n_o))
                assert sorted(got) == want
                assert all(lists[p][j] == o for (p, o), j in got.items())
                found += len(want)
                repair(s, got, 2, 1)
    assert found > 20
