"""The allocation as columns (`Allocation`): what the child process sends back and the service
adopts is a few numpy arrays, not one Python object per assignment, and says what the objects
said (`assignments`, `blocking_pairs`, `as_map`)."""

from __future__ import annotations

import gc
import pickle

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.domain.market import allocate_market
from matching.domain.model import Offer, Project
from matching.domain.results import Allocation, Assignment
from services.matching.tests.unit.factories import engine, instances, offer, project

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(instances())
def test_the_columns_say_what_the_assignments_say(inst: tuple[list[Project], list[Offer]]) -> None:
    projects, offers = inst
    e = engine(*offers, *projects)
    alloc = allocate_market(e.snapshot())
    objects = alloc.assignments
    assert [a.project_id for a in objects] == sorted(a.project_id for a in objects)  # id order
    for a in objects:
        p, o = e.project_models[a.project_id], e.offer_models[a.offer_id]
        assert a.amount_cny == min(p.amount_cny, o.ticket_max_cny)
    assert alloc.as_map() == {a.project_id: a.offer_id for a in objects}
    for p in e.project_models:
        assert alloc.offer_of(p) == next((a.offer_id for a in objects if a.project_id == p), None)
    assert alloc.stable == (alloc.blocking_pairs == [])
    assert alloc.blocking_pairs == sorted(alloc.blocking_pairs)
    rebuilt = Allocation.of(
        [(a.project_id, a.offer_id, a.amount_cny) for a in objects],
        alloc.blocking_pairs,
        market_version=alloc.market_version,
    )
    assert rebuilt == alloc and rebuilt.assignments == objects
    assert pickle.loads(pickle.dumps(alloc)) == alloc


def test_the_result_crosses_from_the_child_as_a_few_objects_the_collector_may_skip() -> None:
    e = engine(
        offer("off-1", max_deals=40, capacity_cny=2_000_000_000),
        offer("off-2", max_deals=40, capacity_cny=2_000_000_000, pricing={"rate_bp": 440}),
        *(project(f"prj-{i:02d}") for i in range(60)),
    )
    alloc = allocate_market(e.snapshot())
    assert len(alloc.assignments) == 60  # not trivial: every project allocated
    sent = pickle.dumps(alloc)
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        got = pickle.loads(sent)
        made = len(gc.get_objects()) - before  # objects the collector tracks now
    finally:
        gc.enable()
    assert got == alloc and got.as_map() == alloc.as_map()
    assert made <= 2  # the `Allocation` (and its attributes' dict): 60+ objects before
    assert not gc.is_tracked(got.as_map())  # ids only: never walked by a collection


def test_an_empty_allocation_and_one_that_differs() -> None:
    empty = Allocation.of([], [])
    assert empty.assignments == [] and empty.blocking_pairs == [] and empty.stable
    one = Allocation.of([("prj-1", "off-1", 5)], [("prj-2", "off-1")])
    assert one.assignments == [Assignment("prj-1", "off-1", 5)]
    assert one.blocking_pairs == [("prj-2", "off-1")] and not one.stable
    assert one != empty and one != Allocation.of([("prj-1", "off-1", 6)], [("prj-2", "off-1")])
    assert one == Allocation.of([("prj-1", "off-1", 5)], [("prj-2", "off-1")], repair_rounds=3)


@SETTINGS
@given(
    st.dictionaries(st.sampled_from([f"prj-{i}" for i in range(12)]), st.sampled_from("abc")),
    st.dictionaries(st.sampled_from([f"prj-{i}" for i in range(12)]), st.sampled_from("abc")),
)
def test_the_projects_that_moved_are_found_on_the_columns(
    before: dict[str, str], after: dict[str, str]
) -> None:
    def allocation(pairs: dict[str, str]) -> Allocation:
        return Allocation.of([(p, pairs[p], 1) for p in sorted(pairs)], [])

    want = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    assert allocation(after).moved_since(allocation(before)) == want


def test_the_map_made_in_slices_is_the_map() -> None:
    rows = [(f"prj-{i:03d}", f"off-{i % 7}", i) for i in range(25)]
    sliced, whole = Allocation.of(rows, []), Allocation.of(rows, [])
    assert sum(1 for _ in sliced.make_map(10)) == 2  # 25 entries: three slices, two pauses
    assert sliced.as_map() == whole.as_map() == {p: o for p, o, _ in rows}
    assert sliced.as_map() is sliced.as_map() and list(sliced.make_map(10)) == []  # made once
