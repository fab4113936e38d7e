"""Operator CLI of the matching engine, offline: no broker, no database.

    python -m matching.entrypoints.cli allocate instance.json --out result.json
    python -m matching.entrypoints.cli explain instance.json PROJECT_ID [OFFER_ID]
    python -m matching.entrypoints.cli check instance.json

The instance and result formats are documented in docs/matching-engine.md. Progress goes to
stderr (for large instances), the result to --out or stdout."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from matching.domain.engine import MatchEngine
from matching.domain.instance import Instance, engine_for, parse, result_json

app = typer.Typer(add_completion=False, help="Matching engine: offline allocation and audits.")
LARGE = 2_000  # projects from which progress is printed


class Progress:
    """Prints a stage's progress to stderr, at most every half second per stage."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.start, self.last = enabled, time.monotonic(), 0.0

    def say(self, text: str) -> None:
        if self.enabled:
            print(f"[{time.monotonic() - self.start:7.1f}s] {text}", file=sys.stderr, flush=True)

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if self.enabled and (now - self.last >= 0.5 or (total and done >= total)):
            self.last = now
            self.say(f"{stage}: {done:,}" + (f" / {total:,}" if total else ""))


def _load(path: Path, progress: Progress) -> Instance:
    progress.say(f"reading {path}")
    try:
        instance = parse(path.read_bytes())
    except ValidationError as e:
        print(f"{path}: not a valid instance\n{e}", file=sys.stderr)
        raise typer.Exit(2) from e
    except OSError as e:
        print(f"{path}: {e.strerror}", file=sys.stderr)
        raise typer.Exit(2) from e
    progress.say(f"{len(instance.projects):,} projects, {len(instance.offers):,} offers")
    return instance


def _engine(instance: Instance, top_k: int | None, as_of: str | None, p: Progress) -> MatchEngine:
    day = date.fromisoformat(as_of) if as_of else None
    return engine_for(instance, top_k=top_k, as_of=day, progress=p)


TopK = Annotated[int | None, typer.Option(help="proposals per project (default: the instance's)")]
AsOf = Annotated[str | None, typer.Option(help="evaluate on this day (default: the instance's)")]


@app.command()
def allocate(
    instance: Annotated[Path, typer.Argument(help="instance JSON file")],
    out: Annotated[Path | None, typer.Option(help="result JSON file (default: stdout)")] = None,
    top_k: TopK = None,
    as_of: AsOf = None,
    breakdowns: Annotated[bool, typer.Option(help="both scores' breakdowns per pair")] = True,
    quiet: Annotated[bool, typer.Option(help="no progress on stderr")] = False,
) -> None:
    """Proposals, the stable allocation and both scores with breakdowns, as JSON."""
    progress = Progress(not quiet)
    inst = _load(instance, progress)
    progress.enabled = not quiet and (len(inst.projects) >= LARGE or out is not None)
    engine = _engine(inst, top_k, as_of, progress)
    progress.say("allocating")
    alloc = engine.allocation(progress)
    progress.say(
        f"{len(alloc.assignments):,} allocated, stable: {alloc.stable}, "
        f"{len(alloc.blocking_pairs)} blocking pairs, {alloc.repair_rounds} repair rounds"
    )
    target = out.open("w", encoding="utf-8") if out else sys.stdout
    try:
        for piece in result_json(engine, breakdowns=breakdowns, progress=progress):
            target.write(piece)
    finally:
        if out:
            target.close()
    progress.say(f"wrote {out}" if out else "done")


@app.command()
def explain(
    instance: Annotated[Path, typer.Argument(help="instance JSON file")],
    project_id: Annotated[str, typer.Argument()],
    offer_id: Annotated[str | None, typer.Argument()] = None,
    top_k: TopK = None,
    as_of: AsOf = None,
) -> None:
    """Why (or why not) a pair, the project's proposals and what-if advice, as JSON."""
    inst = _load(instance, Progress(False))
    engine = _engine(inst, top_k, as_of, Progress(False))
    if project_id not in engine.project_models:
        print(f"no project {project_id!r} in {instance}", file=sys.stderr)
        raise typer.Exit(2)
    out: dict[str, Any] = {
        "project_id": project_id,
        "proposals": [dataclasses.asdict(p) for p in engine.proposals_for_project(project_id)],
        "advice": [dataclasses.asdict(a) for a in engine.advice(project_id)],
    }
    if offer_id is not None:
        if offer_id not in engine.offer_models:
            print(f"no offer {offer_id!r} in {instance}", file=sys.stderr)
            raise typer.Exit(2)
        out["explanation"] = dataclasses.asdict(engine.explain(project_id, offer_id))
    print(json.dumps(out, ensure_ascii=False, indent=2))


@app.command()
def check(instance: Annotated[Path, typer.Argument(help="instance JSON file")]) -> None:
    """Validate an instance and print its size."""
    inst = _load(instance, Progress(False))
    print(
        f"{instance}: valid; as of {inst.as_of}, {len(inst.projects)} projects, "
        f"{len(inst.offers)} offers, {len(inst.funders)} funders"
    )


if __name__ == "__main__":
    app()
