"""A stored match brought in line with its proposal as a field update, read raw. The pairs of a
wide change that entered a top k or whose score moved were loaded whole (the model validated,
its packed breakdowns and decisions parsed), re-proposed if retracted, refreshed, given their
decision and saved whole: ~40 % of a wide withdrawal's CPU (the pairs moving back into the top
ks, which its publication had displaced). Each is now read raw (`StoredMatch`) and written as
`Match.repropose` and `Match.refresh` would change it: the status fields of a retracted one,
rank, score, allocation flag, its breakdowns where they moved, and a re-proposal's decision
appended to its packed `decisions` text (spliced in, the earlier ones left as stored; parsed
into decisions only where `Match.record` would rewrite them), a re-proposal's `proposed` event
built from the stored document; all in the one conditional write of the batch's retractions.
Same stored fields, same events (`test_field_refreshes.py`, `test_wide_offer_effects.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter
from pydantic_core import from_json, to_json, to_jsonable_python

from g60_chassis.store import VersionConflict
from matching.domain.audit import Decision
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


def packed(match: StoredMatch) -> bool:
    """Its packed fields stored as text: it can be refreshed without a load (a document an
    older release wrote with the values themselves is loaded, as before)."""
    return all(isinstance(match.doc.get(k), str) for k in PACKED)


def refresh(
    match: StoredMatch,
    p: Proposal,
    allocated: bool,
    as_of: int | None,
    now: datetime,
    decision: Decision | None,
    events: MatchEvents,
) -> FieldWrite | None:
    """The write that brings `match` (`packed`) in line with `p`: what `repropose` (if it is
    retracted), `refresh(p, allocated, as_of)`, `record(decision)` (re-proposed) and a save of
    the loaded match store (a `proposed` event if re-proposed); None if that changes nothing."""
    doc = match.doc
    fields = reproposed(match.status, match.expires_at, now) or {}
    again = bool(fields)
    if again or doc.get("rank") != p.rank or doc.get("score") != round(p.score, 4):
        fields |= {"rank": p.rank, "score": round(p.score, 4)}
    if allocated != bool(doc.get("allocated")):
        fields |= {"allocated": allocated, "allocated_as_of": as_of}
    change: dict[str, Any] = to_jsonable_python(fields)
    texts = (str(doc["enterprise_view"]), str(doc["funder_view"]))
    views: Views | None = None  # parsed only where needed: that is most of the cost
    old: Views | None = None
    new = texts
    if p.enterprise_view is not None or p.funder_view is not None:
        views = (p.enterprise_view or {}, p.funder_view or {})
        new = (VIEW.dump_json(views[0]).decode(), VIEW.dump_json(views[1]).decode())
        # the same text, the same breakdowns (JSON values: numbers, text, lists, objects)
        old = views if new == texts else (_parsed(texts[0]), _parsed(texts[1]))
    moved = old != views
    if moved or decision is not None:
        old = old or (_parsed(texts[0]), _parsed(texts[1]))
        decisions = _recorded(str(doc["decisions"]), old, views or old, moved, decision)
        if decisions != doc["decisions"]:
            change["decisions"] = decisions
    if not change and not moved:
        return None  # as `Match.refresh` finds nothing changed: no save
    if new != texts:  # written with the rest, as the loaded match's save writes them
        change["enterprise_view"], change["funder_view"] = new
    if not again:
        return FieldWrite(match.id, change, match.version, [])
    after = {**doc, **change, "version": match.version + 1}
    parsed = views or old or (_parsed(texts[0]), _parsed(texts[1]))
    after["enterprise_view"], after["funder_view"] = parsed  # the event's objects
    return FieldWrite(match.id, change, match.version, events.stored("proposed", after))


def _parsed(text: str) -> dict[str, Any]:
    got: dict[str, Any] = from_json(text)
    return got


def _recorded(text: str, old: Views, views: Views, moved: bool, decision: Decision | None) -> str:
    """The packed decisions once the match's views are `views` (they were `old`; `moved`:
    they differ) and `decision` is recorded. The common case, views unchanged and room left:
    the decision's text appended to the stored text. Otherwise the decisions are parsed,
    pinned and recorded as `Match` does."""
    # a decision's text starts with its id (its first field): `{"id":` marks each decision
    # (a quote inside a string is escaped; no breakdown holds an "id", and one that did would
    # only be parsed for nothing), so the text is parsed only where it may hold this decision
    # or too many to append to
    needle = '{"id":' + to_json(decision.id).decode() if decision is not None else None
    if decision is not None and needle and needle in text and decision.id in _ids(text):
        decision = None  # recorded already (`Match.record`: once per id)
    if not moved and decision is None:
        return text
    if not moved and decision is not None and text.count('{"id":') < KEEP:
        if (decision.enterprise_view, decision.funder_view) == views:
            decision = decision.model_copy(update={"enterprise_view": None, "funder_view": None})
        one = DECISION.dump_json(decision).decode()
        return f"{text[:-1]},{one}]" if text != "[]" else f"[{one}]"
    decisions = DECISIONS.validate_json(text)
    if moved:
        decisions = pinned(decisions, old)
    if decision is not None:
        decisions = recorded(decisions, decision, views)
    return DECISIONS.dump_json(decisions).decode()


def _ids(text: str) -> set[str]:
    return {str(d.get("id")) for d in from_json(text)}


class Refreshes:
    """The field writes of a reconciled batch's matches read raw, and the decisions of its
    re-proposals (one round of the audit's reads and inserts for all): recorded on the loaded
    matches (saved whole by the caller), spliced into the others' writes."""

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
        """`loaded`: re-proposed loaded matches; `raw`: the matches read raw, each with its
        proposal; `allocated`: project → its allocated offer (the flags the writes set).
        Returns the writes of the raw ones and, by id, how to write each again from it as read
        again (a match written meanwhile: `Retractions.write`)."""
        back = [(m, p) for m, p in raw if m.status == "retracted"]
        pairs = [(m.id, p) for m, p in loaded] + [(m.id, p) for m, p in back]
        decisions: list[Decision | None] = [None] * len(pairs)
        if pairs and self.audit is not None:  # recorded before the writes that carry them
            decisions = await self.audit.decide_many("proposed", pairs)
        for (match, _), decision in zip(loaded, decisions, strict=False):
            if decision is not None:
                match.record(decision)
        decided = {m.id: d for (m, _), d in zip(back, decisions[len(loaded) :], strict=True)}
        again: dict[str, Rewrite] = {
            m.id: partial(
                self._write,
                m.status,
                p,
                allocated.get(p.project_id) == p.offer_id,
                as_of,
                now,
                decided.get(m.id),
            )
            for m, p in raw
        }
        return [w for m, _ in raw if (w := again[m.id](m))], again

    def _write(
        self,
        status: str,
        p: Proposal,
        allocated: bool,
        as_of: int | None,
        now: datetime,
        decision: Decision | None,
        match: StoredMatch,
    ) -> FieldWrite | None:
        """The match's write, unless it moved to another status since it was first read (a
        VersionConflict then, as a lost save: the batch fails, its delivery is retried)."""
        if match.status != status or not packed(match):
            raise VersionConflict(match.id)
        return refresh(match, p, allocated, as_of, now, decision, self.events)
