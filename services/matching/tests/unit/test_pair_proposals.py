"""`MatchEngine.proposals_of`: the proposals of chosen (project, offer) pairs in one vectorised
pass are, pair by pair, `MatchEngine.proposal`'s (its rank beyond the top k a pass over every
offer): eligibility, scores, breakdowns, the rank with ties by offer id, the allocated mark."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from matching.domain.engine import MatchEngine
from matching.domain.model import Offer, Project
from services.matching.tests.unit.factories import AS_OF, engine, instances, offer, project


def _engine(projects: list[Project], offers: list[Offer], top_k: int) -> MatchEngine:
    e = MatchEngine(AS_OF, top_k=top_k)
    for o in offers:
        e.upsert_offer(o)
    for p in projects:
        e.upsert_project(p)
    return e


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(  # equal amounts: many equal scores, their ranks by offer id
        instances(max_projects=10, max_offers=12),
        instances(max_projects=10, max_offers=12, equal_amounts=True),
    ),
    st.sampled_from([1, 2, 3]),
    st.booleans(),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_the_proposals_of_pairs_are_each_pairs_proposal(
    market: tuple[list[Project], list[Offer]],
    top_k: int,
    breakdowns: bool,
    allocated: bool,
    rnd: random.Random,
) -> None:
    projects, offers = market
    e = _engine(projects, offers, top_k)
    pairs = [(p.id, o.id) for p in projects for o in offers]
    pairs += [("prj-unknown", offers[0].id), (projects[0].id, "off-unknown")]
    pairs = pairs + pairs[:3]  # a pair asked twice
    rnd.shuffle(pairs)
    want = [e.proposal(p, o, breakdowns=breakdowns, allocated=allocated) for p, o in pairs]
    assert e.proposals_of(pairs, breakdowns=breakdowns, allocated=allocated) == want


@settings(max_examples=40, deadline=None)
@given(instances(max_projects=8, max_offers=12, equal_amounts=True))
def test_a_projects_ranks_beyond_the_top_k_are_one_to_its_eligible_offers(
    market: tuple[list[Project], list[Offer]],
) -> None:
    projects, offers = market
    e = _engine(projects, offers, top_k=1)
    got = e.proposals_of([(p.id, o.id) for p in projects for o in offers], allocated=False)
    for p in projects:
        ranks = sorted(q.rank for q in got if q is not None and q.project_id == p.id)
        assert ranks == list(range(1, len(ranks) + 1))


def test_no_pairs_no_proposals() -> None:
    e = MatchEngine(AS_OF)
    assert e.proposals_of([]) == []
    assert e.proposals_of([("p", "o")]) == [None]


def test_equal_offers_beyond_the_top_k_rank_by_id_as_one_pair_does() -> None:
    e = engine(*(offer(f"o{i}") for i in (4, 1, 5, 3, 2)), project("p1"), top_k=1)
    pairs = [("p1", f"o{i}") for i in (5, 3, 1, 4, 2)]
    got = e.proposals_of(pairs, breakdowns=False, allocated=False)
    assert [q.rank if q else None for q in got] == [5, 3, 1, 4, 2]
    assert got == [e.proposal(p, o, breakdowns=False, allocated=False) for p, o in pairs]
