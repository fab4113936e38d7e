"""A retracted match proposed again as a field update. The pairs that move back into the top ks
when an offer is withdrawn (those its publication had displaced) were loaded whole (the model
validated, its packed breakdowns and decisions parsed), re-proposed, refreshed, given their
decision and saved whole: ~40 % of a wide withdrawal's CPU. Such a pair is now read raw
(`StoredMatch`) and written as `Match.repropose` and `Match.refresh` would change it: its
status fields, rank, score, allocation flag, its breakdowns where they moved, and the decision
appended to its packed `decisions` text (spliced in, the earlier ones left as stored; parsed
into decisions only where `Match.record` would rewrite them), its `proposed` event built from
the stored document, all in the one conditional write of the batch's retractions. Same
stored fields, same event (`test_reproposal_writes.py`, `test_wide_offer_effects.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter
from pydantic_core import from_json, to_jsonable_python

from matching.domain.audit import Decision, DecisionKind
from matching.domain.match import KEEP, Match, Views, pinned, recorded, reproposed
from matching.domain.results import Proposal
from matching.service.ports import MatchEvents
from matching.service.retraction import FieldWrite, Rewrite, StoredMatch

if TYPE_CHECKING:
    from matching.service.audit import DecisionLog

# the packed fields' JSON texts, as `Aggregates(packed=)` writes them (the same adapters)
VIEW: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])
DECISIONS: TypeAdapter[list[Decision]] = TypeAdapter(list[Decision])
DECISION: TypeAdapter[Decision] = TypeAdapter(Decision)
PACKED = ("enterprise_view", "funder_view", "decisions")


def raw_retracted(match: StoredMatch) -> bool:
    """Retracted, its packed fields stored as text: a re-proposal of it needs no load (a
    document an older release wrote with the values themselves is loaded, as before)."""
    return match.status == "retracted" and all(isinstance(match.doc.get(k), str) for k in PACKED)


def repropose(
    match: StoredMatch,
    p: Proposal,
    allocated: bool,
    as_of: int | None,
    now: datetime,
    decision: Decision | None,
    events: MatchEvents,
) -> FieldWrite:
    """The write that proposes `match` (`raw_retracted`) again as `p`: what `repropose`,
    `refresh(p, allocated, as_of)`, `record(decision)` and a save of the loaded match store."""
    fields = reproposed(match.status, match.expires_at, now)
    if fields is None:
        raise ValueError(f"{match.id} is {match.status}, not retracted")
    doc = match.doc
    fields |= {"rank": p.rank, "score": round(p.score, 4)}
    if allocated != bool(doc.get("allocated")):
        fields |= {"allocated": allocated, "allocated_as_of": as_of}
    change: dict[str, Any] = to_jsonable_python(fields)
    old = (_parsed(doc["enterprise_view"]), _parsed(doc["funder_view"]))
    views = old
    if p.enterprise_view is not None or p.funder_view is not None:
        views = (p.enterprise_view or {}, p.funder_view or {})
    moved = views != old
    if moved:
        change["enterprise_view"] = VIEW.dump_json(views[0]).decode()
        change["funder_view"] = VIEW.dump_json(views[1]).decode()
    text = str(doc["decisions"])
    if moved or decision is not None:
        decisions = _recorded(text, old, views, moved, decision)
        if decisions != text:
            change["decisions"] = decisions
    version = match.version
    after = {**doc, **change, "version": version + 1}
    after["enterprise_view"], after["funder_view"] = views  # the event's objects
    return FieldWrite(match.id, change, version, events.stored("proposed", after))


def _parsed(text: object) -> dict[str, Any]:
    got: dict[str, Any] = from_json(str(text))
    return got


def _recorded(
    text: str,
    old: Views,
    views: Views,
    moved: bool,
    decision: Decision | None,
) -> str:
    """The packed decisions once the match's views are `views` (they were `old`; `moved`:
    they differ) and `decision` is recorded. The common case, views unchanged and room left:
    the decision's text appended to the stored text. Otherwise the decisions are parsed and
    pinned and recorded as `Match` does."""
    listed: list[dict[str, Any]] = from_json(text)
    if decision is not None and any(d.get("id") == decision.id for d in listed):
        decision = None  # recorded already (`Match.record`: once per id)
    if not moved and decision is None:
        return text
    if not moved and decision is not None and len(listed) < KEEP:
        if (decision.enterprise_view, decision.funder_view) == views:
            decision = decision.model_copy(update={"enterprise_view": None, "funder_view": None})
        one = DECISION.dump_json(decision).decode()
        return f"{text[:-1]},{one}]" if listed else f"[{one}]"
    decisions = DECISIONS.validate_json(text)
    if moved:
        decisions = pinned(decisions, old)
    if decision is not None:
        decisions = recorded(decisions, decision, views)
    return DECISIONS.dump_json(decisions).decode()


class Reproposals:
    """The re-proposals of a reconciled batch: their decisions (one round of the audit's
    reads and inserts for all), recorded on the loaded matches (saved whole by the caller),
    and the field writes of those read raw."""

    def __init__(self, events: MatchEvents, audit: DecisionLog | None) -> None:
        self.events, self.audit = events, audit

    async def decide(
        self,
        loaded: list[tuple[Match, Proposal]],
        raw: list[tuple[StoredMatch, Proposal]],
        allocated: Mapping[str, str],
        as_of: int | None,
        now: datetime,
    ) -> tuple[list[FieldWrite], dict[str, Rewrite]]:
        """`allocated`: project → its allocated offer (the flags the writes set). Returns the
        writes of the raw ones and, by id, how to write each again from it as read again (a
        match written meanwhile: `Retractions.write`)."""
        pairs = [(m.id, p) for m, p in loaded] + [(m.id, p) for m, p in raw]
        decisions: list[Decision | None] = [None] * len(pairs)
        if pairs and self.audit is not None:  # recorded before the writes that carry them
            decisions = await decide(self.audit, "proposed", pairs)
        for (match, _), decision in zip(loaded, decisions, strict=False):
            if decision is not None:
                match.record(decision)
        again: dict[str, Rewrite] = {
            m.id: partial(self._write, p, allocated.get(p.project_id) == p.offer_id, as_of, now, d)
            for (m, p), d in zip(raw, decisions[len(loaded) :], strict=True)
        }
        return [w for m, _ in raw if (w := again[m.id](m))], again

    def _write(
        self,
        p: Proposal,
        allocated: bool,
        as_of: int | None,
        now: datetime,
        decision: Decision | None,
        match: StoredMatch,
    ) -> FieldWrite | None:
        """None unless it is still retracted (another writer proposed it meanwhile)."""
        if not raw_retracted(match):
            return None
        return repropose(match, p, allocated, as_of, now, decision, self.events)


async def decide(
    audit: DecisionLog, kind: DecisionKind, pairs: list[tuple[str, Proposal]]
) -> list[Decision | None]:
    """`DecisionLog.decided_many`'s decisions, not recorded on a loaded match: for each (match
    id, proposal) its decision (None where a view of the pair is missing, as there), the
    inputs not stored yet stored first in one insert."""
    views = await audit.read.pair_views(p for _, p in pairs)
    todo = [(i, *pair) for i, pair in enumerate(views) if pair is not None]
    await audit.keep_inputs_of([(project, offer) for _, project, offer in todo])
    out: list[Decision | None] = [None] * len(pairs)
    for i, project, offer in todo:
        id, p = pairs[i]
        out[i] = audit.decision(kind, id, p, project, offer)
    return out
