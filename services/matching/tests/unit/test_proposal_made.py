"""`Proposal.made` (the engine's fast constructor) against `Proposal(...)`: every field, a new
field not passed on fails here, and the result is still frozen."""

from __future__ import annotations

import dataclasses

import pytest

from matching.domain.results import Proposal


def test_made_is_the_dataclass_constructor_field_for_field() -> None:
    values = {
        "project_id": "prj-1",
        "offer_id": "off-1",
        "rank": 3,
        "score": 0.61,
        "enterprise_score": 0.5,
        "funder_score": 0.72,
        "allocated": True,
        "enterprise_view": {"total": 0.5, "terms": []},
        "funder_view": {"total": 0.72, "terms": []},
    }
    made, built = Proposal.made(**values), Proposal(**values)
    assert made == built
    assert dataclasses.asdict(made) == dataclasses.asdict(built) == values
    assert made.__dict__ == built.__dict__  # every field set, in order, none left to a default
    assert list(made.__dict__) == [f.name for f in dataclasses.fields(Proposal)]
    assert Proposal.made(*list(values.values())[:7]) == Proposal(*list(values.values())[:7])
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.rank = 1  # type: ignore[misc]
