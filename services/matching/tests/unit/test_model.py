"""The domain model: validation with clear messages, the USCC check, "as of" helpers."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from matching.domain import uscc
from matching.domain.model import Enterprise, Offer, Project, Qualification
from services.matching.tests.unit.factories import enterprise, offer, project


@pytest.mark.parametrize(
    "code", ["91310117MA1J3R7X4B", "91350100M000100Y43", "91310000MA1FL0AB6H".lower()]
)
def test_valid_codes_pass_and_come_back_upper_case(code: str) -> None:
    if not uscc.is_valid(code):
        code = uscc.make(code.upper()[:17])
    assert uscc.validate(code) == code.upper()


def test_a_wrong_check_character_is_rejected_with_the_right_one_named() -> None:
    with pytest.raises(ValueError, match="check character is 'C', GB 32100-2015 gives 'B'"):
        uscc.validate("91310117MA1J3R7X4C")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("91310117MA1J3R7X4", "18 characters, not 17"),
        ("91310117MA1J3R7XOB", "'O' are not allowed"),
        ("91310117MA1J3R7XIB", "'I' are not allowed"),
    ],
)
def test_malformed_codes_say_what_is_wrong(code: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        uscc.validate(code)


def test_make_computes_the_check_character() -> None:
    assert uscc.make("91310117MA1J3R7X4") == "91310117MA1J3R7X4B"
    assert all(uscc.is_valid(uscc.make(f"9131011{i:010d}")) for i in range(200))


def test_an_enterprise_with_a_wrong_code_is_refused() -> None:
    with pytest.raises(ValidationError, match="uscc"):
        Enterprise.model_validate(enterprise(uscc="91310117MA1J3R7X4C"))


def test_qualifications_and_years_depend_on_the_day() -> None:
    e = Enterprise.model_validate(
        enterprise(
            founded_on="2016-11-26",
            qualifications=[
                {"kind": "high_tech_enterprise", "expires_on": "2026-12-31"},
                {"kind": "little_giant", "expires_on": None},
            ],
        )
    )
    assert e.qualifications_on(date(2026, 12, 31)) == {
        Qualification.high_tech_enterprise,
        Qualification.little_giant,
    }
    assert e.qualifications_on(date(2027, 1, 1)) == {Qualification.little_giant}
    years = e.years_on(date(2026, 11, 26))
    assert years is not None and 9.99 < years < 10.01


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"min_amount_cny": 30_000_000}, "exceeds amount_cny"),
        ({"instruments": []}, "at least 1 item"),
        ({"instruments": ["equity", "equity"]}, "must not repeat"),
        ({"weights": {"price": 1.0}}, "unknown enterprise-side criteria"),
        ({"weights": {"cost": -1.0}}, "finite number ≥ 0"),
        ({"max_dilution": 1.5}, "less than or equal to 1"),
        ({"stage": "series_z"}, "stage"),
        ({"surprise": 1}, "Extra inputs are not permitted"),
    ],
)
def test_a_bad_project_is_refused_with_a_clear_message(change: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        project(**change)


def test_zero_weights_everywhere_are_refused() -> None:
    zero = dict.fromkeys(["cost", "speed", "amount", "instrument", "collateral"], 0.0)
    with pytest.raises(ValidationError, match="at least one enterprise-side weight"):
        project(weights=zero)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ticket_min_cny": 40_000_000}, "exceeds ticket_max_cny"),
        ({"valid_from": "2028-01-01"}, "valid_from is after valid_until"),
        ({"capacity_cny": -1}, "greater than or equal to 0"),
        ({"preferences": {"weights": {"cost": 1.0}}}, "unknown funder-side criteria"),
        ({"cities": ["songjiang"]}, "cities"),
    ],
)
def test_a_bad_offer_is_refused_with_a_clear_message(change: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        offer(**change)


def test_deals_left_and_floor() -> None:
    assert offer(max_deals=5, deals_taken=2).deals_left == 3
    assert offer(max_deals=5, deals_taken=9).deals_left == 0
    assert offer(max_deals=None).deals_left is None
    assert project(min_amount_cny=None).floor_cny == 20_000_000
    assert project().floor_cny == 10_000_000


def test_models_round_trip_through_json() -> None:
    p, o = project(), offer()
    assert Project.model_validate_json(p.model_dump_json()) == p
    assert Offer.model_validate_json(o.model_dump_json()) == o
    assert p.model_dump(mode="json")["enterprise"]["city"] == "shanghai"
