"""The unified social credit code (统一社会信用代码) of GB 32100-2015: 18 characters over a
31-symbol alphabet (digits and capitals without I, O, S, V, Z); the 18th is a check character,
mod 31 of the weighted sum of the first 17."""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)  # 3**i mod 31
_VALUE = {c: i for i, c in enumerate(ALPHABET)}


def check_char(first17: str) -> str:
    """The check character for the first 17 characters of a code."""
    if len(first17) != 17 or any(c not in _VALUE for c in first17):
        raise ValueError("the body of a unified social credit code is 17 characters")
    total = sum(_VALUE[c] * w for c, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def make(first17: str) -> str:
    """A valid code from its first 17 characters (for test data and examples)."""
    return first17 + check_char(first17)


def validate(code: str) -> str:
    """The code in upper case if it is well formed with the right check character, else a
    ValueError that says which part is wrong."""
    value = code.strip().upper()
    if len(value) != 18:
        raise ValueError(f"a unified social credit code has 18 characters, not {len(value)}")
    bad = sorted({c for c in value if c not in _VALUE})
    if bad:
        raise ValueError(
            f"characters {''.join(bad)!r} are not allowed in a unified social credit code "
            "(0-9 and A-Y except I, O, S, V, Z)"
        )
    expected = check_char(value[:17])
    if value[17] != expected:
        raise ValueError(f"check character is {value[17]!r}, GB 32100-2015 gives {expected!r}")
    return value


def is_valid(code: str) -> bool:
    try:
        validate(code)
    except ValueError:
        return False
    return True
