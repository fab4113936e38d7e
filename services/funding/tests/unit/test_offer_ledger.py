"""The Offer aggregate alone (no I/O): the capacity ledger's reserve / commit / release rules
and the rules of an offer's changes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from funding.domain.model import Offer, RuleViolation

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def offer(**over: Any) -> Offer:
    fields: dict[str, Any] = {
        "id": "off_1",
        "funder_id": "fun_1",
        "funder_kind": "bank",
        "name": "科创贷",
        "instrument": "credit_loan",
        "ticket_min_cny": 1,
        "ticket_max_cny": 100,
        "capacity_cny": 100,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Offer(**{**fields, **over})


def held(o: Offer) -> int:
    return o.reserved_cny + o.committed_cny


def test_reserve_takes_capacity_and_a_deal_and_records_the_match() -> None:
    o = offer()
    decision = o.reserve("m1", 30, NOW)
    assert decision.reserved and decision.changed
    assert (o.reserved_cny, o.remaining_cny, o.deals_taken) == (30, 70, 1)
    assert o.reservations["m1"].state == "reserved"


def test_reserve_again_for_the_same_match_changes_nothing() -> None:
    o = offer()
    o.reserve("m1", 30, NOW)
    again = o.reserve("m1", 30, NOW)
    assert again.reserved and not again.changed
    assert (o.reserved_cny, o.deals_taken) == (30, 1)


@pytest.mark.parametrize(
    ("over", "amount", "reason"),
    [
        ({}, 101, "capacity"),
        ({"max_deals": 1}, 10, "max_deals"),
        ({"status": "withdrawn"}, 10, "withdrawn"),
    ],
)
def test_reserve_refuses_with_a_reason_and_remembers_it(
    over: dict[str, Any], amount: int, reason: str
) -> None:
    o = offer(**over)
    if over.get("max_deals"):
        o.reserve("m0", 10, NOW)
    before = (o.reserved_cny, o.deals_taken)
    decision = o.reserve("m1", amount, NOW)
    assert not decision.reserved and decision.reason == reason
    assert (o.reserved_cny, o.deals_taken) == before
    assert o.reservations["m1"].state == "rejected"
    assert not o.reserve("m1", amount, NOW).changed  # a redelivery gets no second answer


def test_reserve_exactly_the_remaining_capacity() -> None:
    o = offer()
    assert o.reserve("m1", 60, NOW).reserved
    assert o.reserve("m2", 40, NOW).reserved
    assert o.remaining_cny == 0
    assert o.reserve("m3", 1, NOW).reason == "capacity"


def test_commit_at_the_reserved_amount_moves_it_to_committed() -> None:
    o = offer()
    o.reserve("m1", 30, NOW)
    assert o.commit("m1", 30, NOW) == "committed"
    assert (o.reserved_cny, o.committed_cny, o.remaining_cny, o.deals_taken) == (0, 30, 70, 1)
    assert o.commit("m1", 30, NOW) == "repeat"
    assert o.committed_cny == 30


def test_commit_below_the_reservation_releases_the_difference() -> None:
    o = offer()
    o.reserve("m1", 30, NOW)
    assert o.commit("m1", 25, NOW) == "committed"
    assert (o.reserved_cny, o.committed_cny, o.remaining_cny) == (0, 25, 75)
    assert o.reservations["m1"].amount_cny == 25


def test_commit_above_the_reservation_when_the_excess_fits() -> None:
    o = offer()
    o.reserve("m1", 30, NOW)
    assert o.commit("m1", 50, NOW) == "committed"
    assert (o.committed_cny, o.remaining_cny) == (50, 50)


def test_commit_above_the_reservation_beyond_capacity_commits_the_reserved_amount() -> None:
    o = offer()
    o.reserve("m1", 20, NOW)
    o.reserve("m2", 80, NOW)
    assert o.commit("m1", 30, NOW) == "capped"
    assert (o.reserved_cny, o.committed_cny) == (80, 20)
    assert held(o) <= o.capacity_cny


def test_commit_without_a_held_reservation_does_nothing() -> None:
    o = offer()
    assert o.commit("nobody", 10, NOW) == "unreserved"
    o.reserve("m1", 200, NOW)  # refused for capacity
    assert o.commit("m1", 200, NOW) == "unreserved"
    o.reserve("m2", 10, NOW)
    o.release("m2", NOW)
    assert o.commit("m2", 10, NOW) == "unreserved"
    assert held(o) == 0


def test_release_gives_back_capacity_and_the_deal_once() -> None:
    o = offer(max_deals=1)
    o.reserve("m1", 30, NOW)
    assert o.release("m1", NOW)
    assert not o.release("m1", NOW)
    assert (o.reserved_cny, o.deals_taken, o.remaining_cny) == (0, 0, 100)
    assert o.reserve("m2", 30, NOW).reserved  # the freed deal slot is usable again


def test_release_of_a_committed_or_unknown_match_does_nothing() -> None:
    o = offer()
    o.reserve("m1", 30, NOW)
    o.commit("m1", 30, NOW)
    assert not o.release("m1", NOW)
    assert not o.release("m9", NOW)
    assert (o.committed_cny, o.deals_taken) == (30, 1)


def test_withdraw_is_idempotent_and_a_withdrawn_offer_cannot_change() -> None:
    o = offer()
    assert o.withdraw(NOW) and not o.withdraw(NOW)
    with pytest.raises(RuleViolation) as err:
        o.change({"name": "x"}, NOW)
    assert err.value.field == "status"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ticket_min_cny": 200}, "ticket_min_cny"),
        ({"ticket_max_cny": 0}, "ticket_max_cny"),
        ({"valid_from": date(2027, 2, 1), "valid_until": date(2027, 1, 1)}, "valid_from"),
        ({"valid_until": date(2025, 12, 31)}, "valid_until"),
        ({"capacity_cny": 20}, "capacity_cny"),
        ({"max_deals": 0}, "max_deals"),
        ({"name": None}, "name"),
        ({"reserved_cny": 0}, "reserved_cny"),
    ],
)
def test_change_names_the_field_that_breaks_a_rule(changes: dict[str, Any], field: str) -> None:
    o = offer(valid_from=date(2026, 1, 1))
    o.reserve("m1", 30, NOW)
    with pytest.raises(RuleViolation) as err:
        o.change(changes, NOW)
    assert err.value.field == field


def test_change_may_clear_optional_fields_and_keeps_reservations() -> None:
    o = offer(max_deals=3, valid_until=date(2027, 12, 31))
    o.reserve("m1", 30, NOW)
    later = datetime(2026, 12, 1, tzinfo=UTC)
    o.change({"max_deals": None, "valid_until": None, "capacity_cny": 30}, later)
    assert o.max_deals is None and o.valid_until is None and o.updated_at == later
    assert (o.remaining_cny, o.reservations["m1"].state) == (0, "reserved")
