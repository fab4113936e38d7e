"""The decision record of a match: what the engine decided about a pair (proposed it, or the
allocation gave the project this offer), with the engine and market versions, the versions of
the inputs it judged, and both sides' score breakdowns. Replaying the inputs through the same
engine code must give the same breakdowns; `differences` says where it does not."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel

DecisionKind = Literal["proposed", "allocated"]
TOLERANCE = 1e-9  # scores are quantised to 1e-9 (scoring.SCALE)


class Decision(BaseModel):
    id: str
    match_id: str
    kind: DecisionKind
    at: datetime
    engine_version: str
    market_version: int
    as_of: date
    project_id: str
    project_version: int
    enterprise_id: str
    offer_id: str
    offer_version: int
    score: float
    # None: the same as the views of the match that holds this decision (stored once, on the
    # match: `Match.record`); a match pins them here before its own views change
    enterprise_view: dict[str, Any] | None
    funder_view: dict[str, Any] | None


def decision_id(match_id: str, kind: DecisionKind, market_version: int) -> str:
    """One record per decision: recording it again (a redelivery) changes nothing."""
    return f"{match_id}:{kind}:{market_version}"


def input_id(kind: Literal["project", "enterprise", "offer"], id: str, version: int) -> str:
    return f"{kind}:{id}:{version}"


def differences(recorded: Any, replayed: Any, path: str = "") -> list[str]:
    """Where two JSON-like values differ (numbers within TOLERANCE), as `path: a != b`."""
    if isinstance(recorded, dict) and isinstance(replayed, dict):
        out: list[str] = []
        for k in sorted(set(recorded) | set(replayed), key=str):
            out += differences(recorded.get(k), replayed.get(k), f"{path}.{k}" if path else k)
        return out
    if isinstance(recorded, list) and isinstance(replayed, list):
        if len(recorded) != len(replayed):
            return [f"{path}: {len(recorded)} entries != {len(replayed)}"]
        return [
            d
            for i, (a, b) in enumerate(zip(recorded, replayed, strict=True))
            for d in differences(a, b, f"{path}[{i}]")
        ]
    numbers = (int, float)
    if (
        isinstance(recorded, numbers)
        and isinstance(replayed, numbers)
        and not isinstance(recorded, bool)
        and not isinstance(replayed, bool)
    ):
        a, b = float(recorded), float(replayed)
        same = (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, abs_tol=TOLERANCE)
        return [] if same else [f"{path}: {recorded!r} != {replayed!r}"]
    return [] if recorded == replayed else [f"{path}: {recorded!r} != {replayed!r}"]
