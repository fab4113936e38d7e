"""The allocation kept between runs (`MarketAllocation`) against the batch allocation of the
same market state, on random sequences of changes: projects and offers added, changed and
withdrawn, capacities changed. With equal amounts deferred acceptance has one outcome whatever
the order of proposals, and the incremental run must give exactly the batch result. With mixed
amounts the outcome depends on the order of proposals (a stable allocation may not exist), so
the incremental run must give a feasible allocation whose listed blocking pairs are exactly
those of the definition (a brute-force check), like the batch run."""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.adapters.allocator import InProcess
from matching.domain import market
from matching.domain.engine import MatchEngine
from matching.domain.market import MarketAllocation, allocate_market
from matching.domain.model import Offer, Project
from matching.domain.preferences import SnapshotLists
from services.matching.tests.unit.factories import AS_OF, brute_force_blocking, code, offer, project

Op = tuple[str, object]


def a_project(i: int, city: str, revenue: int, amount: int) -> Project:
    return project(
        f"p{i:02d}",
        enterprise_kw={
            "id": f"e{i:02d}",
            "uscc": code(i),
            "city": city,
            "annual_revenue_cny": revenue,
        },
        amount_cny=amount,
        min_amount_cny=None,
    )


def an_offer(i: int, rate: int, deals: int, capacity: int, city: str) -> Offer:
    return offer(
        f"o{i:02d}",
        pricing={"rate_bp": rate},
        max_deals=deals,
        capacity_cny=capacity,
        preferences={"priority_cities": [city]},
    )


@st.composite
def histories(draw: st.DrawFn, equal: bool) -> list[Op]:
    """A contested market (every project eligible for every offer, offers running full; the
    scores differ), then random changes of every kind, in a random order."""
    amounts = [20_000_000] if equal else [20_000_000, 5_000_000, 10_000_000, 25_000_000]
    caps = [40_000_000, 20_000_000, 60_000_000, 0, 500_000_000]

    def p(i: int) -> Op:
        city = draw(st.sampled_from(["shanghai", "jiaxing"]))
        revenue = draw(st.sampled_from([42_000_000, 9_000_000, 200_000_000]))
        return ("project", a_project(i, city, revenue, draw(st.sampled_from(amounts))))

    def o(i: int) -> Op:
        rate = draw(st.sampled_from([380, 300, 440]))
        deals = draw(st.sampled_from([2, 1, 3, 40]))
        city = draw(st.sampled_from(["shanghai", "jiaxing"]))
        return ("offer", an_offer(i, rate, deals, draw(st.sampled_from(caps)), city))

    n_o, n_p = draw(st.integers(1, 4)), draw(st.integers(2, 10))
    ops = list(draw(st.permutations([o(i) for i in range(n_o)] + [p(i) for i in range(n_p)])))
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["rm-p", "capacity", "project", "offer", "rm-o", "deals"]))
        if kind == "project":
            ops.append(p(draw(st.integers(0, 11))))
        elif kind == "offer":
            ops.append(o(draw(st.integers(0, 4))))
        elif kind in ("capacity", "deals"):
            cap = draw(st.sampled_from(caps))
            taken = draw(st.sampled_from([None, 0, 1, 2])) if kind == "deals" else None
            ops.append(("capacity", (f"o{draw(st.integers(0, 4)):02d}", cap, taken)))
        else:
            ops.append((kind, f"{'p' if kind == 'rm-p' else 'o'}{draw(st.integers(0, 11)):02d}"))
    return ops


def apply(e: MatchEngine, op: Op) -> None:
    kind, x = op
    if kind == "project":
        e.upsert_project(x)  # type: ignore[arg-type]
    elif kind == "offer":
        e.upsert_offer(x)  # type: ignore[arg-type]
    elif kind == "capacity":
        e.set_capacity(*x)  # type: ignore[misc]
    elif kind == "rm-p":
        e.remove_project(x)  # type: ignore[arg-type]
    else:
        e.remove_offer(x)  # type: ignore[arg-type]


def check_feasible(e: MatchEngine, alloc_map: dict[str, str]) -> None:
    for oid, o in e.offer_models.items():
        mine = [p for p, x in alloc_map.items() if x == oid]
        amounts = [min(e.project_models[p].amount_cny, o.ticket_max_cny) for p in mine]
        assert sum(amounts) <= o.capacity_cny
        assert o.deals_left is None or len(mine) <= o.deals_left


SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(histories(equal=True), st.integers(1, 4), st.sampled_from([(2, 2), (3, 4)]))
def test_incremental_equals_batch_with_equal_amounts(ops: list[Op], every: int, sizes) -> None:  # type: ignore[no-untyped-def]
    top_k, pref_depth = sizes
    e = MatchEngine(AS_OF, top_k=top_k, depth=top_k + 1, pref_depth=pref_depth)
    inc = MarketAllocation()
    for i, op in enumerate(ops):
        apply(e, op)
        if i % every == 0 or i == len(ops) - 1:
            snap = e.snapshot()
            got, want = inc(snap), allocate_market(snap)
            assert got.assignments == want.assignments, inc.mode
            assert got.blocking_pairs == want.blocking_pairs == []
            assert got.repair_rounds == 0  # continued deferred acceptance alone got there


@SETTINGS
@given(histories(equal=False), st.integers(1, 3))
def test_incremental_with_mixed_amounts_is_feasible_and_lists_its_blocking_pairs(
    ops: list[Op], every: int
) -> None:
    replay_mixed(ops, every)


@SETTINGS
@given(histories(equal=False), st.integers(1, 3))
def test_a_repair_cut_short_by_its_budget_still_lists_every_blocking_pair(
    ops: list[Op], every: int
) -> None:
    """No proposals allowed to the repair after a change: the first round that proposes is
    undone and the rounds stop (at full scale: a budget of tens of thousands)."""
    with patch.object(market, "BUDGET", 0), patch.object(market, "PATIENCE", 1):
        replay_mixed(ops, every)


def replay_mixed(ops: list[Op], every: int) -> None:
    e = MatchEngine(AS_OF, top_k=2, depth=3, pref_depth=2)
    inc = MarketAllocation()
    for i, op in enumerate(ops):
        apply(e, op)
        if i % every == 0 or i == len(ops) - 1:
            got = inc(e.snapshot())
            e.adopt(got)
            check_feasible(e, got.as_map())
            assert sorted(got.blocking_pairs) == sorted(brute_force_blocking(e))
            assert got.stable == (got.blocking_pairs == [])


def test_an_offer_back_in_the_lengthened_list_a_project_ran_out_of_draws_it() -> None:
    """Five projects, two places at each of three offers; the lists are cached two deep, so
    the last project lengthens its list to reach o02. With o02's capacity 0 it runs out of
    that list (complete: o02 is not eligible); with the capacity back, o02 must draw it again
    (or list the pair). Hypothesis found it: `rewind.shallow` gave the project the cache's list
    back, cut where it had run out, and o02 came after its end unseen (no proposal, no
    blocking pair listed; brute force found it)."""
    ops: list[Op] = [("offer", an_offer(i, 380, 2, 40_000_000, "shanghai")) for i in range(3)]
    ops += [("project", a_project(i, "shanghai", 42_000_000, 20_000_000)) for i in range(5)]
    ops += [("capacity", ("o02", 0, None)), ("capacity", ("o02", 40_000_000, None))]
    replay_mixed(ops, 1)
    e = MatchEngine(AS_OF, top_k=2, depth=3, pref_depth=2)
    inc = MarketAllocation()
    for op in ops:
        apply(e, op)
        got = inc(e.snapshot())
    assert inc.mode == "incremental"
    assert got.as_map()["p04"] == "o02" and len(got.as_map()) == 5
    assert got.blocking_pairs == []


def test_a_withdrawn_project_lets_the_one_its_offer_rejected_in() -> None:
    """One deal left: the offer keeps the project it prefers; when that one is withdrawn, the
    rejected project moves in (its rejection no longer holds), without a batch run."""
    e = MatchEngine(AS_OF, top_k=3)
    e.upsert_offer(offer("off-1", max_deals=1))
    e.upsert_offer(offer("off-2", max_deals=5, pricing={"rate_bp": 440}))
    e.upsert_project(project("prj-1"))
    e.upsert_project(project("prj-2", enterprise_kw={"city": "jiaxing"}))  # off-1 prefers prj-1
    inc = MarketAllocation()
    assert inc(e.snapshot()).as_map() == {"prj-1": "off-1", "prj-2": "off-2"}
    e.remove_project("prj-1")
    got = inc(e.snapshot())
    assert inc.mode == "incremental" and inc.reopened == 1
    assert got.as_map() == {"prj-2": "off-1"} == allocate_market(e.snapshot()).as_map()


async def test_the_worker_thread_keeps_the_state_between_runs() -> None:
    """The service's background refresh (`InProcess`) continues from its last run."""
    e = MatchEngine(AS_OF, top_k=3)
    e.upsert_offer(offer("off-1", max_deals=1))
    e.upsert_project(project("prj-1"))
    allocate = InProcess()
    first = await allocate(e.snapshot())
    e.upsert_project(project("prj-2", enterprise_kw={"city": "jiaxing"}))
    second = await allocate(e.snapshot())
    assert allocate.kept.mode == "incremental"
    assert first.as_map() == second.as_map() == {"prj-1": "off-1"}
    batch = allocate_market(e.snapshot())
    assert (second.assignments, second.blocking_pairs) == (batch.assignments, batch.blocking_pairs)
    assert second.proposals_made == 1 < batch.proposals_made  # only the newcomer proposed


def test_a_new_offer_below_what_projects_hold_moves_no_one_and_one_above_draws_them() -> None:
    """A new offer enters every list: below the offer each project holds, no one proposes
    again (their state holds); above it, each goes back to that place, not to the top."""
    e = MatchEngine(AS_OF, top_k=3)
    e.upsert_offer(offer("off-1", max_deals=40, pricing={"rate_bp": 380}))
    for i in range(6):
        e.upsert_project(project(f"prj-{i}", enterprise_kw={"id": f"ent-{i}", "uscc": code(i)}))
    inc = MarketAllocation()
    inc(e.snapshot())
    e.upsert_offer(offer("off-2", max_deals=40, pricing={"rate_bp": 440}))  # dearer: below
    got = inc(e.snapshot())
    assert (inc.mode, got.proposals_made) == ("incremental", 0)
    assert got.assignments == allocate_market(e.snapshot()).assignments
    assert set(got.as_map().values()) == {"off-1"}
    e.upsert_offer(offer("off-3", max_deals=40, pricing={"rate_bp": 300}))  # cheaper: above
    got = inc(e.snapshot())
    assert (inc.mode, got.proposals_made) == ("incremental", 6)  # one each, from place 0
    assert got.assignments == allocate_market(e.snapshot()).assignments
    assert set(got.as_map().values()) == {"off-3"}


def test_a_lengthened_list_read_again_is_lengthened_again_in_the_new_order() -> None:
    """A list lengthened beyond the cache and read again from a new snapshot (its project
    proposes from the top again) is lengthened again at once, as deep as it was: the new
    market's order, the same as lengthening it from scratch there."""
    e = MatchEngine(AS_OF, top_k=1, depth=2, pref_depth=2)
    for i in range(6):
        e.upsert_offer(offer(f"off-{i}", max_deals=40, pricing={"rate_bp": 300 + 20 * i}))
    e.upsert_project(project("prj-0", enterprise_kw={"id": "ent-0", "uscc": code(0)}))
    m = e.snapshot()
    p = int(m.live[0])
    lists = SnapshotLists(m, m.live)
    assert lists.length[p] == 2 and not lists.complete[p]
    lists.extend(p, np.zeros(0, np.int64))
    assert lists.length[p] == 6 and p in lists.deep
    e.upsert_offer(offer("off-5", max_deals=40, pricing={"rate_bp": 200}))  # now the first
    m2 = e.snapshot()
    lists.take(m2, np.asarray([p]))
    fresh = SnapshotLists(m2, m2.live)
    fresh.extend(p, np.zeros(0, np.int64))
    assert p in lists.deep and lists.complete[p]
    assert lists.offers(p).tolist() == fresh.offers(p).tolist()
    assert [m2.offer_ids[o] for o in lists.offers(p)][:2] == ["off-5", "off-0"]


def test_lengthened_lists_hit_by_a_new_offer_below_keep_their_state() -> None:
    """Projects that went beyond the cache's lists (lengthened) and that a new offer enters:
    below what they hold, their state holds (no proposal); above, they go back to its place
    (as the projects within the cache do), and the result is the batch's."""
    e = MatchEngine(AS_OF, top_k=1, depth=2, pref_depth=2)
    for i in range(4):
        e.upsert_offer(offer(f"off-{i}", max_deals=1, pricing={"rate_bp": 300 + 20 * i}))
    for i in range(4):
        e.upsert_project(project(f"prj-{i}", enterprise_kw={"id": f"ent-{i}", "uscc": code(i)}))
    inc = MarketAllocation()
    first = inc(e.snapshot())
    assert len(first.assignments) == 4 and len(inc.lists.deep) >= 2  # type: ignore[union-attr]
    e.upsert_offer(offer("off-8", max_deals=1, pricing={"rate_bp": 400}))  # dearer: below all
    got = inc(e.snapshot())
    assert (inc.mode, got.proposals_made) == ("incremental", 0)
    assert got.assignments == allocate_market(e.snapshot()).assignments
    e.upsert_offer(offer("off-9", max_deals=1, pricing={"rate_bp": 200}))  # cheaper: above all
    got = inc(e.snapshot())
    assert inc.mode == "incremental"
    assert got.assignments == allocate_market(e.snapshot()).assignments


def deep_market(n: int) -> tuple[MatchEngine, MarketAllocation]:
    """n offers of one deal each, dearer by id, n + 1 projects after them (the lists cached
    two deep: most are lengthened), allocated once."""
    e = MatchEngine(AS_OF, top_k=1, depth=2, pref_depth=2)
    for i in range(n):
        e.upsert_offer(offer(f"off-{i}", max_deals=1, pricing={"rate_bp": 300 + 20 * i}))
    for i in range(n - 1):
        e.upsert_project(project(f"prj-{i}", enterprise_kw={"id": f"ent-{i}", "uscc": code(i)}))
    inc = MarketAllocation()
    inc(e.snapshot())
    return e, inc


def test_lengthened_lists_a_change_does_not_reach_are_cut_where_the_project_proposed() -> None:
    """A new offer below where every project proposed: the lengthened lists are not read
    again but cut there (no proposal); a project pushed beyond later reads on from the new
    market, and the result is the batch's."""
    e, inc = deep_market(5)
    lists, s = inc.lists, inc.state
    assert lists is not None and s is not None
    deep = np.fromiter(lists.deep, np.int64)
    deep = deep[s.ptr[deep] > 2]  # beyond the cache's two (the others take the cache's again)
    assert deep.size >= 2 and (lists.length[deep] > s.ptr[deep]).any()
    e.upsert_offer(offer("off-8", max_deals=1, pricing={"rate_bp": 400}))  # dearer: below all
    got = inc(e.snapshot())
    assert (inc.mode, got.proposals_made) == ("incremental", 0)
    assert (lists.length[deep] == s.ptr[deep]).all()  # cut, not read again
    assert got.assignments == allocate_market(e.snapshot()).assignments
    e.upsert_project(project("prj-9", enterprise_kw={"id": "ent-0a", "uscc": code(9)}))
    e.set_capacity("off-1", 0)  # its holder is pushed beyond where it proposed
    got = inc(e.snapshot())
    assert inc.mode == "incremental"
    assert got.assignments == allocate_market(e.snapshot()).assignments


def test_a_changed_offer_moving_before_where_projects_proposed_is_read_again() -> None:
    """An offer no one holds, beyond every project's place, moves to the third place (beyond
    the cache's two, so only the lengthened lists can tell): the projects that proposed beyond
    it go back (their lists read again), as in the batch."""
    e, inc = deep_market(5)
    e.upsert_offer(offer("off-4", max_deals=1, pricing={"rate_bp": 330}))
    got = inc(e.snapshot())
    assert inc.mode == "incremental" and got.proposals_made > 0
    assert got.assignments == allocate_market(e.snapshot()).assignments
    assert "off-4" in got.as_map().values()


def test_a_new_offer_tied_with_the_last_place_and_an_earlier_id_comes_before_it() -> None:
    """A new offer with the same terms as the offer a lengthened list's project holds and an
    id that sorts before it comes before it in the list (ties go by id): it is read again and
    the project takes the new offer, as in the batch."""
    e, inc = deep_market(5)
    held = inc(e.snapshot()).as_map()
    assert "off-3" in held.values()
    e.upsert_offer(offer("off-2z", max_deals=1, pricing={"rate_bp": 360}))  # off-3's terms
    got = inc(e.snapshot())
    assert inc.mode == "incremental"
    assert got.assignments == allocate_market(e.snapshot()).assignments
    assert "off-2z" in got.as_map().values() and "off-3" not in got.as_map().values()
