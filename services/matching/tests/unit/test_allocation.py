"""Deferred acceptance on abstract instances (preference lists and funder scores given
directly), against brute force: its blocking pairs are exactly those of the definition, a
stable allocation is found whenever one exists (on these small instances), and an instance
without one is reported as unstable with its residual pair."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.domain import stability
from matching.domain.allocation import Acceptance, Pool, Result, allocate, repair, result, settle


def Lists(lists: dict[int, list[int]], f: dict[tuple[int, int], int]) -> Pool:
    """Complete lists (`extend` is never needed)."""
    return Pool.of(lists, {p: [f[(p, o)] for o in v] for p, v in lists.items()})


Instance = tuple[list[int], list[int], list[int], dict[int, list[int]], dict[tuple[int, int], int]]


def blocking(inst: Instance, assign: dict[int, int]) -> list[tuple[int, int]]:
    """The definition, literally."""
    amount, cap, deals, lists, f = inst
    out = []
    for p, lst in lists.items():
        mine = assign.get(p)
        for o in lst if mine is None else lst[: lst.index(mine)]:
            room, slots, kept = cap[o], deals[o], []
            holders = [q for q, x in assign.items() if x == o] + [p]
            for q in sorted(holders, key=lambda q: (-f[(q, o)], q)):
                if slots > 0 and amount[q] <= room:
                    kept.append(q)
                    room -= amount[q]
                    slots -= 1
            if p in kept:
                out.append((p, o))
    return sorted(out)


def stable_exists(inst: Instance) -> bool:
    amount, cap, deals, lists, _ = inst
    for choice in itertools.product(*[[None, *lists[p]] for p in sorted(lists)]):
        assign = {p: o for p, o in enumerate(choice) if o is not None}
        feasible = all(
            sum(amount[p] for p, x in assign.items() if x == o) <= cap[o]
            and sum(1 for x in assign.values() if x == o) <= deals[o]
            for o in range(len(cap))
        )
        if feasible and not blocking(inst, assign):
            return True
    return False


def run(inst: Instance) -> Result:
    amount, cap, deals, lists, f = inst
    n = len(amount)
    return allocate(
        list(range(n)), Lists(lists, f), amount, [10**9] * len(cap), cap, deals, list(range(n))
    )


@st.composite
def abstract(draw: st.DrawFn, equal: bool = False) -> Instance:
    """Small instances with contention (hypothesis leans towards the first of a choice)."""
    n_p, n_o = draw(st.sampled_from([5, 4, 6, 3, 2, 1])), draw(st.sampled_from([2, 3, 1]))
    amount = [2 if equal else draw(st.sampled_from([3, 1, 4, 2])) for _ in range(n_p)]
    cap = [draw(st.sampled_from([5, 6, 4, 7, 3, 0])) for _ in range(n_o)]
    deals = [draw(st.sampled_from([9, 2, 1])) for _ in range(n_o)]
    lists = {
        p: draw(st.permutations(range(n_o)))[: draw(st.sampled_from([n_o, 1, 0]))]
        for p in range(n_p)
    }
    f = {(p, o): draw(st.integers(0, 99)) for p in range(n_p) for o in range(n_o)}
    return amount, cap, deals, lists, f


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(abstract())
def test_reported_blocking_pairs_are_exactly_the_definitions(inst: Instance) -> None:
    r = run(inst)
    assert sorted(r.blocking) == blocking(inst, r.assignment)
    assert r.stable == (r.blocking == [])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(abstract())
def test_a_stable_allocation_is_found_whenever_one_exists(inst: Instance) -> None:
    if stable_exists(inst):
        assert run(inst).stable


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(abstract(equal=True))
def test_equal_amounts_are_stable_without_repair(inst: Instance) -> None:
    r = run(inst)
    assert r.stable and r.rounds == 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(abstract())
def test_capacity_deals_and_lists_are_respected(inst: Instance) -> None:
    amount, cap, deals, lists, _ = inst
    r = run(inst)
    for o in range(len(cap)):
        mine = [p for p, x in r.assignment.items() if x == o]
        assert sum(amount[p] for p in mine) <= cap[o] and len(mine) <= deals[o]
    assert all(o in lists[p] for p, o in r.assignment.items())


@pytest.mark.parametrize("seed", range(4))
def test_uniform_random_instances_against_brute_force(seed: int) -> None:
    """Hypothesis favours simple instances; uniform ones need repairs more often (about 2 %),
    so these seeded runs exercise the repair rounds on a few thousand of them."""
    rng, repaired = random.Random(seed), 0
    for _ in range(1500):
        n_p, n_o = rng.randint(2, 5), rng.randint(1, 3)
        inst: Instance = (
            [rng.randint(1, 4) for _ in range(n_p)],
            [rng.randint(3, 6) for _ in range(n_o)],
            [rng.choice([9, 9, 2]) for _ in range(n_o)],
            {p: rng.sample(range(n_o), rng.randint(1, n_o)) for p in range(n_p)},
            {(p, o): rng.randint(0, 100) for p in range(n_p) for o in range(n_o)},
        )
        r = run(inst)
        repaired += r.rounds > 0
        assert sorted(r.blocking) == blocking(inst, r.assignment)
        if not r.stable:
            assert not stable_exists(inst)
    assert repaired > 0


# Found by searching random instances: no allocation of this one is stable. Offer 0 (capacity
# 6) prefers 3 > 1 > 0 > 2, offer 1 (capacity 3) prefers 0 = 2 > 3 > 1.
NO_STABLE: Instance = (
    [3, 4, 1, 3],
    [6, 3],
    [9, 9],
    {0: [0, 1], 1: [0], 2: [0], 3: [1, 0]},
    {(0, 0): 21, (0, 1): 66, (1, 0): 77, (1, 1): 2, (2, 0): 5, (2, 1): 66, (3, 0): 93, (3, 1): 34},
)


def test_without_a_stable_allocation_the_residual_pair_is_reported() -> None:
    assert not stable_exists(NO_STABLE)
    r = run(NO_STABLE)
    assert not r.stable and r.rounds > 0
    assert sorted(r.blocking) == blocking(NO_STABLE, r.assignment) != []


def test_an_offer_without_capacity_or_deals_takes_nobody() -> None:
    inst: Instance = (
        [1, 1],
        [0, 5],
        [9, 0],
        {0: [0, 1], 1: [1, 0]},
        dict.fromkeys([(0, 0), (0, 1), (1, 0), (1, 1)], 1),
    )
    r = run(inst)
    assert r.assignment == {} and r.stable


def test_ties_in_the_funders_view_go_to_the_lower_project_id() -> None:
    inst: Instance = ([2, 2], [2], [9], {0: [0], 1: [0]}, {(0, 0): 5, (1, 0): 5})
    assert run(inst).assignment == {0: 0}


def _medium(rng: random.Random) -> Instance:
    """Larger uniform instances with mixed amounts: the repair rounds leave pairs in some."""
    n_p, n_o = rng.randint(20, 40), rng.randint(3, 6)
    return (
        [rng.randint(1, 5) for _ in range(n_p)],
        [rng.randint(4, 12) for _ in range(n_o)],
        [rng.choice([9, 3, 2]) for _ in range(n_o)],
        {p: rng.sample(range(n_o), rng.randint(1, n_o)) for p in range(n_p)},
        {(p, o): rng.randint(0, 100) for p in range(n_p) for o in range(n_o)},
    )


def test_one_pair_at_a_time_lowers_the_residual_pairs_and_lists_them_exactly() -> None:
    """`settle` from the state the repair rounds left: its pairs are exactly the definition's
    on the allocation it leaves, never more than the rounds left, and fewer on some; the
    allocation stays feasible. (Undone tries must restore the state exactly, or the pairs
    computed from the marks would drift from the definition's.)"""
    rng, fewer, tried = random.Random(7), 0, 0
    for _ in range(1500):
        inst = _medium(rng)
        amount, cap, deals, lists, f = inst
        n = len(amount)
        s = Acceptance(Lists(lists, f), amount, [10**9] * len(cap), cap, deals, list(range(n)))
        s.run(range(n))
        rounds = repair(s, stability.blocking(s, range(n)), 8, 3)
        assert sorted(rounds.blocking) == blocking(inst, rounds.assignment)
        if rounds.stable:
            continue
        tried += 1
        r = result(s, settle(s, rounds.pairs, 10_000, per_try=50), rounds.rounds)
        assert sorted(r.blocking) == blocking(inst, r.assignment)
        assert len(r.blocking) <= len(rounds.blocking)
        fewer += len(r.blocking) < len(rounds.blocking)
        for o in range(len(cap)):
            mine = [p for p, x in r.assignment.items() if x == o]
            assert sum(amount[p] for p in mine) <= cap[o] and len(mine) <= deals[o]
    assert tried > 30 and fewer > 0, (tried, fewer)
