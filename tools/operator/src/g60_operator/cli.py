"""`g60`: the operator's command line (`common.HELP`). The platform commands are here; the
bus and dead-letter commands in `bus_cli.py`, backup and restore in `data_cli.py`."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer
from aiokafka.errors import KafkaConnectionError, KafkaError
from rich.console import Console
from rich.progress import Progress

from allinone.seed import seed as seed_catalogue
from g60_contracts.audit import AuditOut
from g60_contracts.stats import StatsOut
from g60_operator import bus_cli, data_cli
from g60_operator import report as reports
from g60_operator.client import OperatorError, check, client
from g60_operator.common import Key, Url, app, out, target

try:  # typer >= 0.2x ships its own copy of click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer on the real click
    from click import ClickException  # type: ignore[assignment]

COMMAND_MODULES = (bus_cli, data_cli)  # they add their commands to `app` when imported


@app.command()
def seed(url: Url = None, key: Key = None) -> None:
    """Post the demo catalogue (funders, offers, enterprises, needs); idempotent."""
    where = target(url, key)

    async def go() -> dict[str, int]:
        async with client(where) as c:
            return await seed_catalogue(c, progress=lambda m: out.print(f"  {m}"))

    try:
        counts = asyncio.run(go())
    except RuntimeError as exc:  # the seeding's own one-line failure
        raise OperatorError(str(exc), OperatorError.REFUSED) from exc
    listed = ", ".join(f"{v} {k}" for k, v in counts.items())
    out.print(f"catalogue in place: {listed} (seeding again creates nothing new)")


@app.command()
def rematch(
    url: Url = None,
    key: Key = None,
    batch: Annotated[int, typer.Option(min=1, max=1000, help="projects per request")] = 100,
) -> None:
    """Reconcile every need's proposals with the engine now, then run the allocation."""
    where = target(url, key)

    async def go() -> None:
        async with client(where) as c:
            ids: list[str] = []
            cursor = None
            while True:
                params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
                page = check(await c.get("/v1/projects", params=params))
                ids += [p["id"] for p in page["items"] if p["status"] == "open"]
                if not (cursor := page.get("next_cursor")):
                    break
            done = 0
            with Progress(console=out, transient=False) as bar:
                task = bar.add_task("reconciling proposals", total=max(len(ids), 1))
                for i in range(0, len(ids), batch):
                    body = {"project_ids": ids[i : i + batch]}
                    done += check(await c.post("/v1/rematch", json=body))["projects"]
                    bar.update(task, advance=len(body["project_ids"]))
                bar.update(task, completed=max(len(ids), 1))
                alloc = bar.add_task("allocating", total=1)
                result = check(await c.post("/v1/rematch", json={"allocate": True}))
                bar.update(alloc, completed=1)
        out.print(
            f"{done} of {len(ids)} open needs reconciled; allocation at market version "
            f"{result['allocation_version']}: {result['assignments']} assignments"
        )

    asyncio.run(go())


@app.command()
def report(
    url: Url = None,
    key: Key = None,
    since: Annotated[
        datetime | None, typer.Option(help="only needs and matches since (YYYY-MM-DD)")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="write stats.csv and PNG charts here")
    ] = None,
) -> None:
    """The corridor's figures: a table here, and with --out a CSV file and the charts."""
    where = target(url, key)
    t0 = time.perf_counter()

    async def go() -> StatsOut:
        async with client(where) as c:
            params = {"since": since.isoformat()} if since else {}
            return StatsOut.model_validate(check(await c.get("/v1/stats", params=params)))

    stats = asyncio.run(go())
    reports.print_tables(stats, out)
    table_s = time.perf_counter() - t0
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        reports.write_csv(stats, out_dir / "stats.csv")
        charts = reports.write_charts(stats, out_dir)
        out.print(f"wrote {out_dir / 'stats.csv'} and {len(charts)} charts in {out_dir}")
    out.print(f"(table in {table_s:.2f} s, all in {time.perf_counter() - t0:.2f} s)")


@app.command()
def audit(
    match_id: Annotated[str, typer.Argument(help="the match id (mat_…)")],
    url: Url = None,
    key: Key = None,
) -> None:
    """A match's decision record, replayed from the recorded inputs through this engine."""
    from matching.adapters.engine import EngineTranslator, engine_version, new_engine
    from matching.service.audit import replay

    where = target(url, key)

    async def go() -> AuditOut:
        async with client(where) as c:
            return AuditOut.model_validate(check(await c.get(f"/v1/matches/{match_id}/audit")))

    record = asyncio.run(go())
    if not record.decisions:
        raise OperatorError(f"match {match_id} has no recorded decision", OperatorError.FAILED)
    mine, failed = engine_version(), 0
    for d in record.decisions:
        out.print(
            f"[bold]{d.kind}[/bold] {d.at:%Y-%m-%d %H:%M:%S} engine {d.engine_version} market "
            f"v{d.market_version} as of {d.as_of} · project {d.project_id} v{d.project_version}"
            f" · offer {d.offer_id} v{d.offer_version} · score {d.score:.4f}"
        )
        for side, view in (("enterprise", d.enterprise_view), ("funder", d.funder_view)):
            terms = ", ".join(
                f"{t['criterion']} {t['score'] if t['score'] is None else round(t['score'], 3)}"
                for t in view.get("terms", [])
            )
            out.print(f"    {side} {view.get('total')}: {terms}")
        diffs = replay(d, lambda as_of: new_engine(as_of, 10), EngineTranslator())
        note = "" if d.engine_version == mine else f" (recorded by engine {d.engine_version})"
        if diffs:
            failed += 1
            out.print(f"  [red]replay differs[/red] with engine {mine}{note}:")
            for line in diffs[:20]:
                out.print(f"    {line}")
        else:
            out.print(f"  [green]replay reproduces it[/green] with engine {mine}{note}")
    if failed:
        raise OperatorError(f"{failed} decision(s) of {match_id} did not replay", 1)


def run(argv: list[str] | None = None) -> int:
    """The command line's exit code; errors are one line on stderr."""
    err = Console(stderr=True, soft_wrap=True)
    try:
        result = app(args=argv, standalone_mode=False, prog_name="g60")
        return result if isinstance(result, int) else 0
    except OperatorError as exc:
        err.print(f"g60: {exc.message}", highlight=False, markup=False)
        return exc.code
    except typer.Abort:
        err.print("g60: aborted")
        return 130
    except ClickException as exc:
        err.print(f"g60: {exc.format_message()}", highlight=False, markup=False)
        return OperatorError.USAGE
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (httpx.ConnectError, httpx.TimeoutException) as exc:
        try:
            where = str(exc.request.url)
        except RuntimeError:  # no request attached
            where = "the platform"
        err.print(f"g60: cannot reach {where}: {exc}", highlight=False, markup=False)
        return OperatorError.UNREACHABLE
    except KafkaConnectionError as exc:
        err.print(f"g60: cannot reach Kafka: {exc}", highlight=False, markup=False)
        return OperatorError.UNREACHABLE
    except KafkaError as exc:
        err.print(f"g60: Kafka refused: {exc}", highlight=False, markup=False)
        return OperatorError.FAILED


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
