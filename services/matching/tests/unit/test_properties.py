"""Property tests of the matcher's invariants on random instances (hypothesis): eligible only,
capacity and deals respected, stability (a brute-force checker), incremental == batch,
determinism."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.domain.engine import MatchEngine
from matching.domain.model import Offer, Project
from services.matching.tests.unit import reference
from services.matching.tests.unit.factories import (
    AS_OF,
    brute_force_blocking,
    instances,
    random_offer,
    random_project,
)

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def batch(projects: list[Project], offers: list[Offer], top_k: int = 3) -> MatchEngine:
    e = MatchEngine(AS_OF, top_k=top_k, depth=top_k + 2, pref_depth=3)
    e.load(projects, offers)
    return e


def state(e: MatchEngine) -> tuple[object, ...]:
    props = {
        p: [(x.offer_id, x.rank, x.score, x.allocated) for x in e.proposals_for_project(p, False)]
        for p in sorted(e.project_models)
    }
    by_offer = {
        o: [(x.project_id, x.rank, x.score) for x in e.proposals_for_offer(o, False)]
        for o in sorted(e.offer_models)
    }
    return props, by_offer, e.allocation()


@SETTINGS
@given(instances())
def test_nothing_ineligible_is_proposed_or_allocated(inst: tuple) -> None:
    projects, offers = inst
    e = batch(projects, offers)
    models = {o.id: o for o in offers}
    for p in projects:
        for x in e.proposals_for_project(p.id, False):
            assert reference.failed(p, models[x.offer_id], AS_OF) == []
    for a in e.allocation().assignments:
        assert reference.failed(e.project_models[a.project_id], models[a.offer_id], AS_OF) == []


@SETTINGS
@given(instances())
def test_proposals_are_the_top_k_eligible_by_combined_score(inst: tuple) -> None:
    projects, offers = inst
    e = batch(projects, offers)
    for p in projects:
        eligible = [o.id for o in offers if e.pair_scores(p.id, o.id) is not None]
        key = {o: sum(e.pair_scores(p.id, o) or (0, 0)) for o in eligible}
        expected = sorted(eligible, key=lambda o: (-key[o], o))[: e.top_k]
        got = [x.offer_id for x in e.proposals_for_project(p.id, False) if x.rank <= e.top_k]
        assert got == expected


@SETTINGS
@given(instances())
def test_capacity_and_deals_are_never_exceeded(inst: tuple) -> None:
    projects, offers = inst
    alloc = batch(projects, offers).allocation()
    assert len({a.project_id for a in alloc.assignments}) == len(alloc.assignments)
    for o in offers:
        mine = [a for a in alloc.assignments if a.offer_id == o.id]
        assert sum(a.amount_cny for a in mine) <= o.capacity_cny
        assert o.deals_left is None or len(mine) <= o.deals_left
    amounts = {p.id: p for p in projects}
    for a in alloc.assignments:
        p = amounts[a.project_id]
        assert p.floor_cny <= a.amount_cny <= p.amount_cny


@SETTINGS
@given(instances(equal_amounts=True))
def test_with_equal_amounts_the_allocation_is_always_stable(inst: tuple) -> None:
    projects, offers = inst
    e = batch(projects, offers)
    alloc = e.allocation()
    assert alloc.stable and alloc.blocking_pairs == [] and alloc.repair_rounds == 0
    assert brute_force_blocking(e) == []


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_projects=16, max_offers=5))
def test_stable_means_no_blocking_pair_and_residual_pairs_are_exact(inst: tuple) -> None:
    projects, offers = inst
    e = batch(projects, offers)
    alloc = e.allocation()
    found = brute_force_blocking(e)
    assert sorted(alloc.blocking_pairs) == sorted(found)
    assert alloc.stable == (found == [])


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[tuple[str, object]], list[Project], list[Offer]]:
    """A random sequence of upserts, changes, capacity updates and removals."""
    projects = [draw(random_project(i)) for i in range(draw(st.integers(1, 10)))]
    offers = [draw(random_offer(i)) for i in range(draw(st.integers(1, 6)))]
    ops: list[tuple[str, object]] = [("offer", o) for o in offers] + [
        ("project", p) for p in projects
    ]
    ops = draw(st.permutations(ops))
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["project", "offer", "capacity", "rm-p", "rm-o"]))
        if kind == "project":
            ops.append(("project", draw(random_project(draw(st.integers(0, 11))))))
        elif kind == "offer":
            ops.append(("offer", draw(random_offer(draw(st.integers(0, 7))))))
        elif kind == "capacity":
            cap = draw(st.sampled_from([0, 1_000_000, 3_000_000, 20_000_000]))
            ops.append(("capacity", (f"o{draw(st.integers(0, 7)):02d}", cap)))
        else:
            ops.append((kind, f"{'p' if kind == 'rm-p' else 'o'}{draw(st.integers(0, 11)):02d}"))
    return ops, projects, offers


def replay(ops: list[tuple[str, object]], top_k: int, depth: int, pref_depth: int) -> MatchEngine:
    e = MatchEngine(AS_OF, top_k=top_k, depth=depth, pref_depth=pref_depth)
    for kind, x in ops:
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
    return e


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.sampled_from([(1, 1, 2), (2, 3, 2), (3, 5, 4)]))
def test_incremental_equals_batch_on_the_same_state(h: tuple, sizes: tuple) -> None:
    ops, _, _ = h
    top_k, depth, pref_depth = sizes
    inc = replay(ops, top_k, depth, pref_depth)
    fresh = MatchEngine(AS_OF, top_k=top_k, depth=depth + 3, pref_depth=pref_depth + 5)
    fresh.load(inc.project_models.values(), inc.offer_models.values())
    assert state(inc) == state(fresh)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_deltas_replayed_give_the_proposals(h: tuple) -> None:
    ops, _, _ = h
    e = MatchEngine(AS_OF, top_k=2, depth=3, pref_depth=2)
    shown: dict[tuple[str, str], float] = {}
    for i in range(len(ops)):
        before = {
            (p, x.offer_id): x.score
            for p in e.project_models
            for x in e.proposals_for_project(p, False)
            if x.rank <= e.top_k
        }
        delta = replay_one(e, ops[i])
        for pair in delta.removed:
            assert pair in before
            del shown[pair]
        for pair in delta.added:
            assert pair not in before
        after = {
            (p, x.offer_id): x.score
            for p in e.project_models
            for x in e.proposals_for_project(p, False)
            if x.rank <= e.top_k
        }
        shown.update({pair: after[pair] for pair in delta.added + delta.changed})
        assert shown == after
        assert {pair for pair in after if after[pair] != before.get(pair, after[pair])} <= set(
            delta.changed
        )


def replay_one(e: MatchEngine, op: tuple[str, object]):  # type: ignore[no-untyped-def]
    kind, x = op
    if kind == "project":
        return e.upsert_project(x)  # type: ignore[arg-type]
    if kind == "offer":
        return e.upsert_offer(x)  # type: ignore[arg-type]
    if kind == "capacity":
        return e.set_capacity(*x)  # type: ignore[misc]
    if kind == "rm-p":
        return e.remove_project(x)  # type: ignore[arg-type]
    return e.remove_offer(x)  # type: ignore[arg-type]


@SETTINGS
@given(instances(), st.randoms(use_true_random=False))
def test_the_same_input_gives_the_same_output_in_any_order(inst: tuple, rnd) -> None:  # type: ignore[no-untyped-def]
    projects, offers = inst
    a = batch(projects, offers)
    shuffled_p, shuffled_o = list(projects), list(offers)
    rnd.shuffle(shuffled_p)
    rnd.shuffle(shuffled_o)
    b = MatchEngine(AS_OF, top_k=3, depth=5, pref_depth=3)
    for o in shuffled_o:
        b.upsert_offer(o)
    for p in shuffled_p:
        b.upsert_project(p)
    assert state(a) == state(b)
