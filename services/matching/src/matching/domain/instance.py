"""The offline instance format (for audits and operators) and the result it produces.

An instance is one JSON object: `as_of` (the day rules are evaluated on), optional `top_k`,
optional `funders` and `enterprises`, and the `projects` and `offers`. A project embeds its
enterprise (`"enterprise": {...}`) or names one of `enterprises` (`"enterprise_id"`); an offer
may leave out `funder_kind` when its funder is listed. The result is produced as JSON text in
pieces (`result_json`), so even a 100,000-project result never sits in memory whole."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from matching.domain.engine import MatchEngine
from matching.domain.model import Enterprise, Funder, Offer, Project
from matching.domain.results import Proposal

INSTANCE_FORMAT = "g60-matching-instance/1"
RESULT_FORMAT = "g60-matching-result/1"
CHUNK = 500  # projects per piece of output


class Instance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: str = INSTANCE_FORMAT
    as_of: date
    top_k: int = Field(10, ge=1, le=1000)
    funders: list[Funder] = []
    enterprises: list[Enterprise] = []
    projects: list[Project] = []
    offers: list[Offer] = []

    @model_validator(mode="before")
    @classmethod
    def _resolve(cls, data: Any) -> Any:
        """Join `enterprise_id` references and funder kinds before validating."""
        if not isinstance(data, dict):
            return data
        enterprises = {e.get("id"): e for e in data.get("enterprises") or [] if isinstance(e, dict)}
        funders = {f.get("id"): f for f in data.get("funders") or [] if isinstance(f, dict)}
        projects = []
        for i, p in enumerate(data.get("projects") or []):
            if isinstance(p, dict) and "enterprise_id" in p:
                p = dict(p)
                ref = p.pop("enterprise_id")
                if "enterprise" in p:
                    raise ValueError(f"projects[{i}] has both enterprise and enterprise_id")
                if ref not in enterprises:
                    raise ValueError(f"projects[{i}]: no enterprise with id {ref!r}")
                p["enterprise"] = enterprises[ref]
            projects.append(p)
        offers = []
        for i, o in enumerate(data.get("offers") or []):
            if isinstance(o, dict) and funders:
                funder = funders.get(o.get("funder_id"))
                if funder is None:
                    raise ValueError(f"offers[{i}]: no funder with id {o.get('funder_id')!r}")
                kind = o.get("funder_kind", funder.get("kind"))
                if kind != funder.get("kind"):
                    raise ValueError(
                        f"offers[{i}]: funder_kind {kind!r} but the funder is a "
                        f"{funder.get('kind')!r}"
                    )
                o = {**o, "funder_kind": kind}
            offers.append(o)
        return {**data, "projects": projects, "offers": offers}

    @model_validator(mode="after")
    def _unique_ids(self) -> Instance:
        for name, items in (
            ("projects", self.projects),
            ("offers", self.offers),
            ("funders", self.funders),
            ("enterprises", self.enterprises),
        ):
            ids = [x.id for x in items]
            dup = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
            if dup:
                raise ValueError(f"{name}: ids repeat: {dup[:5]}")
        return self


def parse(text: str | bytes) -> Instance:
    return Instance.model_validate_json(text)


def engine_for(
    instance: Instance,
    top_k: int | None = None,
    as_of: date | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> MatchEngine:
    engine = MatchEngine(as_of or instance.as_of, top_k=top_k or instance.top_k)
    engine.load(instance.projects, instance.offers, progress=progress, delta=False)
    return engine


def _proposal_json(p: Proposal, breakdowns: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "offer_id": p.offer_id,
        "rank": p.rank,
        "score": p.score,
        "enterprise_score": p.enterprise_score,
        "funder_score": p.funder_score,
        "allocated": p.allocated,
    }
    if breakdowns:
        item["enterprise_view"], item["funder_view"] = p.enterprise_view, p.funder_view
    return item


def result_json(
    engine: MatchEngine,
    breakdowns: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> Iterator[str]:
    """The result document as pieces of JSON text: summary, allocation (each pair with both
    scores and breakdowns), blocking pairs, offers' use of capacity, then every project's
    proposals."""
    alloc = engine.allocation(progress)
    project_ids = sorted(engine.project_models)
    amounts = {a.project_id: a.amount_cny for a in alloc.assignments}
    used: dict[str, list[int]] = {}
    for a in alloc.assignments:
        u = used.setdefault(a.offer_id, [0, 0])
        u[0] += a.amount_cny
        u[1] += 1
    summary = {
        "projects": len(project_ids),
        "offers": len(engine.offer_models),
        "allocated": len(alloc.assignments),
        "allocated_cny": sum(a.amount_cny for a in alloc.assignments),
        "unallocated": len(project_ids) - len(alloc.assignments),
        "stable": alloc.stable,
        "blocking_pairs": len(alloc.blocking_pairs),
        "repair_rounds": alloc.repair_rounds,
        "proposals_made": alloc.proposals_made,
    }
    head = {
        "format": RESULT_FORMAT,
        "as_of": engine.as_of.isoformat(),
        "top_k": engine.top_k,
        "stable": alloc.stable,
        "summary": summary,
        "blocking_pairs": [{"project_id": p, "offer_id": o} for p, o in alloc.blocking_pairs],
    }
    yield json.dumps(head, ensure_ascii=False)[:-1]
    offers = []
    for oid in sorted(engine.offer_models):
        o = engine.offer_models[oid]
        amount, deals = used.get(oid, [0, 0])
        offers.append(
            {
                "offer_id": oid,
                "capacity_cny": o.capacity_cny,
                "allocated_cny": amount,
                "deals_allocated": deals,
                "deals_left": o.deals_left,
            }
        )
    yield ', "offers": ' + json.dumps(offers, ensure_ascii=False)
    yield ', "allocation": ['
    first = True
    for start in range(0, len(project_ids), CHUNK):
        for p in engine.allocated_proposals(project_ids[start : start + CHUNK], breakdowns):
            row = {"project_id": p.project_id, **_proposal_json(p, breakdowns)}
            del row["allocated"]
            row["amount_cny"] = amounts[p.project_id]
            yield ("" if first else ", ") + json.dumps(row, ensure_ascii=False)
            first = False
    yield '], "proposals": ['
    for start in range(0, len(project_ids), CHUNK):
        chunk = project_ids[start : start + CHUNK]
        props = engine.proposals_for_projects(chunk, breakdowns)
        text = ", ".join(
            json.dumps(
                {
                    "project_id": pid,
                    "offers": [_proposal_json(p, breakdowns) for p in props.get(pid, [])],
                },
                ensure_ascii=False,
            )
            for pid in chunk
        )
        yield ("" if start == 0 else ", ") + text
        if progress:
            progress("writing", min(start + CHUNK, len(project_ids)), len(project_ids))
    yield "]}\n"
