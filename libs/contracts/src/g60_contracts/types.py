"""Constrained scalar types used by the contracts. Validation of shape only (a data type's own
definition, like an e-mail address): no business rules live here.

These are the one validation model of the platform's inputs: the API validates with them, so
whatever it accepts the matching domain can take (strict integers — `true` and `"5000000"` are
not money —, finite floats, bounded counts, lists without repeats, known score criteria)."""

import math
import unicodedata
from collections.abc import Hashable
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, Field, Strict, StringConstraints

# GB 32100-2015: 18 characters over this alphabet (no I, O, Z, S, V); the last is a check digit.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check_char(first17: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def _check_uscc(value: str) -> str:
    value = value.upper()
    if len(value) != 18 or any(c not in USCC_ALPHABET for c in value):
        raise ValueError(
            "a unified social credit code has 18 characters from 0-9 and A-Y except I, O, S, V, Z"
        )
    if value[0] == "0" or value[1] == "0":
        # position 1 is the registration authority, 2 the kind of entity: neither is ever 0
        # (so 000000000000000000, whose check digit is right, is refused)
        raise ValueError("no registration authority or entity kind is coded 0")
    expected = uscc_check_char(value[:17])
    if value[17] != expected:
        raise ValueError(f"check digit is {value[17]!r}, GB 32100-2015 gives {expected!r}")
    return value


Uscc = Annotated[
    str,
    StringConstraints(strip_whitespace=True),
    AfterValidator(_check_uscc),
    Field(examples=["91310117MA1J3R7X4B"]),
]
AmountCny = Annotated[
    int, Strict(), Field(ge=0, le=10**13, description="integer CNY (元)", examples=[5000000])
]
PositiveAmountCny = Annotated[int, Strict(), Field(gt=0, le=10**13, description="integer CNY (元)")]
Fraction = Annotated[float, Strict(), Field(ge=0.0, le=1.0, allow_inf_nan=False)]
BasisPoints = Annotated[
    int, Strict(), Field(ge=0, le=100_000, description="annual cost in basis points")
]


def count(le: int, ge: int = 0, default: int | None = None) -> Any:
    """A bounded whole number (days, months, deals, people), optional: strict, so `true` is
    not 1; bounded, so the matcher's integer columns hold it."""
    return Field(default, ge=ge, le=le, strict=True)


def _printable(value: str, *, multiline: bool) -> str:
    allowed = "\n\t\r" if multiline else ""
    bad = [c for c in value if unicodedata.category(c) == "Cc" and c not in allowed]
    if bad:
        raise ValueError(f"control characters are not allowed ({', '.join(map(repr, bad[:3]))})")
    return value


def _name(value: str) -> str:
    _printable(value, multiline=False)
    # zero-width and other format characters (Cf), separators: nothing a person can read
    if not any(unicodedata.category(c)[0] not in "CZ" for c in value):
        raise ValueError("a name needs at least one visible character")
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_name),
]
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=2000),
    AfterValidator(lambda v: _printable(v, multiline=True)),
]
Day = date

H = TypeVar("H", bound=Hashable)


def _unique(values: list[H]) -> list[H]:
    if len(set(values)) != len(values):
        raise ValueError("values must not repeat")
    return values


UniqueList = Annotated[
    list[H], AfterValidator(_unique), Field(json_schema_extra={"uniqueItems": True})
]
"""A list in which each value appears once (the matcher refuses repeats)."""


def not_null(cls: type, value: object) -> object:
    """For a PATCH field that may be left out but not cleared (`null` for a required field)."""
    if value is None:
        raise ValueError("this field cannot be cleared (null); leave it out to keep it")
    return value


class EnterpriseCriterion(StrEnum):
    """The enterprise-side score criteria a project may weigh (the matching engine's)."""

    cost = "cost"
    speed = "speed"
    amount = "amount"
    instrument = "instrument"
    collateral = "collateral"


class FunderCriterion(StrEnum):
    """The funder-side score criteria an offer may weigh (the matching engine's)."""

    sector = "sector"
    stage = "stage"
    city = "city"
    qualifications = "qualifications"
    financials = "financials"
    ticket = "ticket"


Weight = Annotated[float, Strict(), Field(ge=0.0, le=1000.0, allow_inf_nan=False)]
C = TypeVar("C", bound=StrEnum)


def _some_positive(weights: dict[C, float]) -> dict[C, float]:
    """Criteria left out keep their (positive) defaults; all of them at 0 scores nothing."""
    if (
        weights
        and all(w == 0 for w in weights.values())
        and len(weights) == len(type(next(iter(weights))))
    ):
        raise ValueError("at least one weight must be positive")
    if any(not math.isfinite(w) for w in weights.values()):  # belt and braces: JSON NaN
        raise ValueError("weights are finite numbers")
    return weights


EnterpriseWeights = Annotated[
    dict[EnterpriseCriterion, Weight],
    AfterValidator(_some_positive),
    Field(description="override of the enterprise-side score weights, by criterion (≥ 0)"),
]
FunderWeights = Annotated[
    dict[FunderCriterion, Weight],
    AfterValidator(_some_positive),
    Field(description="override of the funder-side score weights, by criterion (≥ 0)"),
]
