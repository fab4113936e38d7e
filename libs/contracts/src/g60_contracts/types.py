"""Constrained scalar types used by the contracts. Validation of shape only (a data type's own
definition, like an e-mail address): no business rules live here."""

from datetime import date
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

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
    int, Field(ge=0, le=10**13, description="integer CNY (元)", examples=[5000000])
]
PositiveAmountCny = Annotated[int, Field(gt=0, le=10**13, description="integer CNY (元)")]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
BasisPoints = Annotated[int, Field(ge=0, le=100_000, description="annual cost in basis points")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
Day = date
