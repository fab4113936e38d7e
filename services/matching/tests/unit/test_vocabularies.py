"""The engine scores exactly the vocabularies partners can send: every enum the domain shares
with the contracts has the same members, so neither side can drift alone."""

from __future__ import annotations

from enum import StrEnum

import pytest

from g60_contracts import enums as contract
from matching.domain import model as domain

SHARED = ["City", "Sector", "Stage", "Instrument", "Qualification", "Collateral", "FunderKind"]


@pytest.mark.parametrize("name", SHARED)
def test_domain_vocabulary_is_the_contracts(name: str) -> None:
    ours: type[StrEnum] = getattr(domain, name)
    theirs: type[StrEnum] = getattr(contract, name)
    assert [m.value for m in ours] == [m.value for m in theirs], name
