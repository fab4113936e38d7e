"""A match: one proposed pair of a project and an offer, and its lifecycle.

proposed → (enterprise accepts, funder accepts, either order) → agreed → reserved | rejected
→ closed; declined by either side, expired after the offer's response deadline, or retracted
when the project or offer is withdrawn or no longer fits. Every transition returns the event
kinds it causes; repeating a transition that already happened returns none (idempotent)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field

from matching.domain.audit import Decision
from matching.domain.results import Proposal

Side = Literal["enterprise", "funder"]
MatchStatus = Literal[
    "proposed", "agreed", "reserved", "rejected", "closed", "declined", "expired", "retracted"
]
OPEN: frozenset[str] = frozenset({"proposed", "agreed", "reserved"})
TERMINAL: frozenset[str] = frozenset({"rejected", "closed", "declined", "expired"})
Views = tuple[dict[str, Any], dict[str, Any]]  # a match's score breakdowns: enterprise, funder
KEEP = 20  # decisions a match keeps: its first and the newest (`Match.record`)


class TransitionError(Exception):
    pass


class Match(BaseModel):
    id: str
    project_id: str
    offer_id: str
    enterprise_id: str
    funder_id: str
    instrument: str
    status: MatchStatus = "proposed"
    previous_status: MatchStatus | None = None
    rank: int | None = None
    score: float = 0.0
    allocated: bool = False
    allocated_as_of: int | None = None  # the market version of the allocation that set the flag
    enterprise_view: dict[str, Any] = {}
    funder_view: dict[str, Any] = {}
    amount_cny: int
    accepted_by_enterprise: bool = False
    accepted_by_funder: bool = False
    closed_amount_cny: int | None = None
    reason: str | None = None
    expires_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    version: int = 0
    # the engine's decisions about this pair, newest last (`domain/audit.py`); stored with the
    # match, so a decision and what it decided are written together. A decision whose score
    # breakdowns are the match's own holds none (None): the breakdowns are stored once, not
    # once more per decision (they were two thirds of a match document); `records` fills them
    decisions: list[Decision] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def expiry_day(self) -> str | None:
        """The UTC day the expiry pass looks for this match on, stored (and indexed) with it:
        the pass asks for the matches of one day by equality, which FerretDB 1.24 answers from
        an index (a range, sort or limit it does not push down: it read every open match).
        The day of its deadline, or of its last change if that came later (a match proposed
        again after its deadline is then on a day the next pass reads)."""
        if self.expires_at is None:
            return None
        return expiry_day(max(self.expires_at, self.updated_at))

    def record(self, decision: Decision, keep: int = KEEP) -> None:
        """Add a decision (once per id), keeping the first and the newest `keep - 1`."""
        self.decisions = recorded(self.decisions, decision, self._views(), keep)

    def records(self) -> list[Decision]:
        """The decisions, each with its score breakdowns (the match's where it shares them)."""
        return pinned(self.decisions, self._views())

    def _views(self) -> Views:
        return self.enterprise_view, self.funder_view

    def _set_views(self, enterprise_view: dict[str, Any], funder_view: dict[str, Any]) -> None:
        """New breakdowns: the decisions that shared the old ones keep them."""
        if (enterprise_view, funder_view) != self._views():
            self.decisions = self.records()
        self.enterprise_view, self.funder_view = enterprise_view, funder_view

    def _move(self, status: MatchStatus, now: datetime) -> None:
        self.previous_status, self.status, self.updated_at = self.status, status, now

    def accept(self, side: Side, now: datetime) -> list[str]:
        if self.status != "proposed":
            if self.status in ("agreed", "reserved", "closed"):
                return []  # already agreed: accepting again changes nothing
            raise TransitionError(f"a {self.status} match cannot be accepted")
        already = self.accepted_by_enterprise if side == "enterprise" else self.accepted_by_funder
        if already:
            return []
        if side == "enterprise":
            self.accepted_by_enterprise = True
        else:
            self.accepted_by_funder = True
        self.updated_at = now
        if self.accepted_by_enterprise and self.accepted_by_funder:
            self._move("agreed", now)
            return ["agreed"]
        return ["accepted"]

    def decline(self, side: Side, reason: str, now: datetime) -> list[str]:
        if self.status == "declined":
            return []
        if self.status not in OPEN:
            raise TransitionError(f"a {self.status} match cannot be declined")
        self.reason = f"declined by {side}" + (f": {reason}" if reason else "")
        self._move("declined", now)
        return ["declined"]

    def reserved(self, now: datetime) -> list[str]:
        if self.status != "agreed":
            return []  # late or repeated answer: nothing to do (funding releases on decline)
        self._move("reserved", now)
        return ["reserved"]

    def rejected(self, reason: str, now: datetime) -> list[str]:
        if self.status != "agreed":
            return []
        self.reason = f"rejected: {reason}"
        self._move("rejected", now)
        return ["rejected"]

    def close(self, amount_cny: int, now: datetime) -> list[str]:
        if self.status == "closed":
            return []
        if self.status != "reserved":
            raise TransitionError(f"only a reserved match can close; this one is {self.status}")
        self.closed_amount_cny = amount_cny
        self._move("closed", now)
        return ["closed"]

    def expire(self, now: datetime) -> list[str]:
        if self.status not in OPEN or self.expires_at is None or now < self.expires_at:
            return []
        self.reason = "the offer's response deadline passed"
        self._move("expired", now)
        return ["expired"]

    def retract(self, reason: str, now: datetime) -> list[str]:
        if self.status not in OPEN:
            return []
        self.reason = reason
        self._move("retracted", now)
        return ["retracted"]

    def repropose(self, now: datetime) -> list[str]:
        """The engine proposes a pair again that it had retracted."""
        if self.status != "retracted":
            return []
        self.accepted_by_enterprise = self.accepted_by_funder = False
        self.reason, self.closed_amount_cny = None, None
        self._move("proposed", now)
        return ["proposed"]

    def refresh(self, proposal: Proposal, allocated: bool, as_of: int | None) -> bool:
        """Bring rank, score, views and the allocation flag in line; True if anything changed.
        A proposal asked without breakdowns leaves the stored views as they are."""
        fields = _proposed(proposal)
        if proposal.enterprise_view is None and proposal.funder_view is None:
            del fields["enterprise_view"], fields["funder_view"]
        if allocated != self.allocated:
            fields |= {"allocated": allocated, "allocated_as_of": as_of}
        if all(getattr(self, k) == v for k, v in fields.items()):
            return False
        if "enterprise_view" in fields:
            self._set_views(fields.pop("enterprise_view"), fields.pop("funder_view"))
        for k, v in fields.items():
            setattr(self, k, v)
        return True


def recorded(
    decisions: list[Decision], decision: Decision, views: Views, keep: int = KEEP
) -> list[Decision]:
    """`Match.record` on a match holding `decisions` and the breakdowns `views`: the decision
    added (once per id; sharing the match's breakdowns where they are its own), the first and
    the newest `keep - 1` kept."""
    if any(d.id == decision.id for d in decisions):
        return decisions
    shared = decision.enterprise_view is None and decision.funder_view is None
    if not shared and (decision.enterprise_view, decision.funder_view) == views:
        decision = decision.model_copy(update={"enterprise_view": None, "funder_view": None})
    out = [*decisions, decision]
    return [out[0], *out[-(keep - 1) :]] if len(out) > keep else out


def pinned(decisions: list[Decision], views: Views) -> list[Decision]:
    """`Match.records`: each decision with its breakdowns (`views`, the match's, where it
    shares them)."""
    ent, fun = views
    return [
        d.model_copy(
            update={
                "enterprise_view": ent if d.enterprise_view is None else d.enterprise_view,
                "funder_view": fun if d.funder_view is None else d.funder_view,
            }
        )
        for d in decisions
    ]


def retracted(
    status: str, expires_at: datetime | None, reason: str, now: datetime
) -> dict[str, Any] | None:
    """The fields `Match.retract` changes on a match in `status` with this deadline (the
    stored `expiry_day` included), for a retraction written as a field update of a match not
    loaded; None if it would change nothing (not open)."""
    if status not in OPEN:
        return None
    day = None if expires_at is None else expiry_day(max(expires_at, now))
    return {
        "status": "retracted",
        "previous_status": status,
        "reason": reason,
        "updated_at": now,
        "expiry_day": day,
    }


def reproposed(status: str, expires_at: datetime | None, now: datetime) -> dict[str, Any] | None:
    """The fields `Match.repropose` changes on a match in `status` with this deadline (the
    stored `expiry_day` included), for a re-proposal written as a field update of a match not
    loaded; None if it would change nothing (not retracted)."""
    if status != "retracted":
        return None
    day = None if expires_at is None else expiry_day(max(expires_at, now))
    return {
        "status": "proposed",
        "previous_status": "retracted",
        "reason": None,
        "closed_amount_cny": None,
        "accepted_by_enterprise": False,
        "accepted_by_funder": False,
        "updated_at": now,
        "expiry_day": day,
    }


def expiry_day(at: datetime) -> str:
    """The bucket of an expiry time: its UTC day, ISO formatted."""
    return (at.astimezone(UTC) if at.tzinfo else at).date().isoformat()


def match_id(project_id: str, offer_id: str) -> str:
    """Derived from the pair: proposing twice, or after a crash, creates nothing twice."""
    return "mat_" + hashlib.sha256(f"{project_id}|{offer_id}".encode()).hexdigest()[:16]


def _proposed(p: Proposal) -> dict[str, Any]:
    return {
        "rank": p.rank,
        "score": round(p.score, 4),
        "enterprise_view": p.enterprise_view or {},
        "funder_view": p.funder_view or {},
    }


def propose(
    proposal: Proposal,
    *,
    enterprise_id: str,
    funder_id: str,
    instrument: str,
    amount_cny: int,
    response_days: int,
    allocated: bool,
    as_of: int | None,
    now: datetime,
) -> Match:
    """A new match from the engine's proposal of the pair."""
    return Match(
        id=match_id(proposal.project_id, proposal.offer_id),
        project_id=proposal.project_id,
        offer_id=proposal.offer_id,
        enterprise_id=enterprise_id,
        funder_id=funder_id,
        instrument=instrument,
        amount_cny=amount_cny,
        allocated=allocated,
        allocated_as_of=as_of,
        expires_at=now + timedelta(days=response_days),
        created_at=now,
        updated_at=now,
        **_proposed(proposal),
    )
