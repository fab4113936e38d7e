"""The match lifecycle: every transition, its events, and idempotent repeats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from matching.domain.match import Match, TransitionError
from matching.domain.results import Proposal
from services.matching.tests.unit.factories import decision, match

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def proposed(**over: Any) -> Match:
    return match(**over)


def test_both_sides_accept_in_either_order_to_agree():
    for first, second in (("enterprise", "funder"), ("funder", "enterprise")):
        m = proposed()
        assert m.accept(first, T0) == ["accepted"] and m.status == "proposed"
        assert m.accept(first, T0) == []  # the same side again changes nothing
        assert m.accept(second, T0) == ["agreed"] and m.status == "agreed"
        assert m.accept(second, T0) == []


def test_reserved_then_closed_with_the_amount():
    m = proposed()
    m.accept("enterprise", T0), m.accept("funder", T0)
    assert m.reserved(T0) == ["reserved"] and m.reserved(T0) == []
    assert m.close(7_500_000, T0) == ["closed"]
    assert (m.status, m.closed_amount_cny, m.previous_status) == ("closed", 7_500_000, "reserved")
    assert m.close(7_500_000, T0) == []


def test_close_before_reservation_is_refused():
    m = proposed()
    with pytest.raises(TransitionError):
        m.close(1, T0)


def test_capacity_rejection_only_answers_an_agreed_match():
    m = proposed()
    assert m.rejected("capacity", T0) == []
    m.accept("enterprise", T0), m.accept("funder", T0)
    assert m.rejected("capacity", T0) == ["rejected"] and m.reason == "rejected: capacity"
    with pytest.raises(TransitionError):
        m.accept("enterprise", T0)


def test_decline_by_either_side_from_any_open_state():
    for setup in ([], ["enterprise"], ["enterprise", "funder"]):
        m = proposed()
        for side in setup:
            m.accept(side, T0)
        assert m.decline("funder", "too small", T0) == ["declined"]
        assert m.reason == "declined by funder: too small"
        assert m.decline("funder", "", T0) == []
    closed = proposed(status="closed")
    with pytest.raises(TransitionError):
        closed.decline("enterprise", "", T0)


def test_expiry_only_after_the_deadline_and_only_when_open():
    m = proposed()
    assert m.expire(T0 + timedelta(days=13)) == []
    assert m.expire(T0 + timedelta(days=14)) == ["expired"]
    assert proposed(status="closed").expire(T0 + timedelta(days=30)) == []


def test_retract_and_repropose_reset_the_acceptances():
    m = proposed()
    m.accept("enterprise", T0)
    assert m.retract("the offer was withdrawn", T0) == ["retracted"]
    assert m.retract("again", T0) == []
    assert m.repropose(T0) == ["proposed"]
    assert not m.accepted_by_enterprise and m.status == "proposed"


# the decisions' score breakdowns: stored once, on the match -------------------------------------
def _proposal(views: dict[str, object]) -> Proposal:
    return Proposal(
        project_id="p",
        offer_id="o",
        score=0.5,
        rank=1,
        enterprise_score=0.5,
        funder_score=0.5,
        allocated=None,
        enterprise_view=views,
        funder_view={"f": views},
    )


def test_a_decision_sharing_the_matchs_breakdowns_is_stored_without_them():
    m = proposed(enterprise_view={"total": 1}, funder_view={"f": {"total": 1}})
    m.record(decision("proposed", 1, {"total": 1}))
    m.record(decision("allocated", 2, {"total": 2}))  # another breakdown: kept as it is
    stored = Match.model_validate(m.model_dump(mode="json"))
    assert [d.enterprise_view for d in stored.decisions] == [None, {"total": 2}]
    assert [d.enterprise_view for d in stored.records()] == [{"total": 1}, {"total": 2}]
    assert [d.funder_view for d in stored.records()] == [{"f": {"total": 1}}, {"f": {"total": 2}}]


def test_new_breakdowns_on_the_match_leave_its_decisions_theirs():
    m = proposed(enterprise_view={"total": 1}, funder_view={"f": {"total": 1}})
    m.record(decision("proposed", 1, {"total": 1}))
    assert m.refresh(_proposal({"total": 3}), allocated=False, as_of=None)
    assert m.enterprise_view == {"total": 3}
    assert [d.enterprise_view for d in m.records()] == [{"total": 1}]
    m.record(decision("proposed", 2, {"total": 3}))
    assert [d.enterprise_view for d in m.decisions] == [{"total": 1}, None]
    assert [d.enterprise_view for d in m.records()] == [{"total": 1}, {"total": 3}]


def test_a_match_stored_with_full_decisions_reads_as_before():
    m = proposed(enterprise_view={"total": 1}, funder_view={"f": {"total": 1}})
    old = m.model_dump(mode="json")
    old["decisions"] = [decision("proposed", 1, {"total": 1}).model_dump(mode="json")]
    stored = Match.model_validate(old)
    assert stored.decisions[0].enterprise_view == {"total": 1}
    assert stored.records()[0].funder_view == {"f": {"total": 1}}
