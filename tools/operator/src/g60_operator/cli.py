"""g60: the operator's command line for the G60 platform, embedded (`make run`, one URL) or
distributed (one URL per service, Kafka + MongoDB). Every make target of an operator calls it.

Where: --url / G60_URL (default http://127.0.0.1:8000), or G60_PROJECTS_URL, G60_FUNDING_URL,
G60_MATCHING_URL per service; key: --key / G60_OPERATOR_KEY, else the embedded platform's
<data dir>/operator.key. Kafka and the data folder come from the platform's settings (G60_*).

Exit codes: 0 done; 1 a check failed (an audit that does not replay, a server error);
2 bad usage or input; 3 the platform or the broker cannot be reached; 4 the platform refused."""

from __future__ import annotations

import asyncio
import os
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
from rich.table import Table

from allinone.keys_cli import keys_cli
from allinone.seed import seed as seed_catalogue
from g60_chassis import dlq
from g60_chassis.settings import PlatformSettings
from g60_contracts.audit import AuditOut
from g60_contracts.stats import StatsOut
from g60_operator import backup as backups
from g60_operator import kafka_ops
from g60_operator import report as reports
from g60_operator.client import DEFAULT_URL, OperatorError, Target, check, client, resolve
from matching.entrypoints.cli import app as matching_cli

try:  # typer >= 0.2x ships its own copy of click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer on the real click
    from click import ClickException  # type: ignore[assignment]

app = typer.Typer(add_completion=False, help=__doc__, no_args_is_help=True)
app.add_typer(keys_cli, name="keys", help="API keys: create, list, revoke, rotate")
app.add_typer(matching_cli, name="engine", help="offline allocation and explanations (files)")
out = Console(width=None if sys.stdout.isatty() else 120)  # tables unclipped in logs and pipes
Url = Annotated[str | None, typer.Option(help="the platform (default G60_URL or :8000)")]
Key = Annotated[str | None, typer.Option(help="operator key (default G60_OPERATOR_KEY)")]
TopicArg = Annotated[str, typer.Argument(help="the topic (or its .dlq), e.g. g60.matches")]


def _target(url: str | None, key: str | None) -> Target:
    return resolve(url, key, PlatformSettings())


def _kafka() -> str:
    settings = PlatformSettings()
    if settings.bus != "kafka":
        raise OperatorError(
            "the embedded platform's in-process bus has no topics or dead-letter queues "
            "(set G60_BUS=kafka and G60_KAFKA_BOOTSTRAP for the distributed shape)",
            OperatorError.USAGE,
        )
    return settings.kafka_bootstrap


@app.command()
def seed(url: Url = None, key: Key = None) -> None:
    """Post the demo catalogue (funders, offers, enterprises, needs); idempotent."""
    target = _target(url, key)

    async def go() -> dict[str, int]:
        async with client(target) as c:
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
    target = _target(url, key)

    async def go() -> None:
        async with client(target) as c:
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
            f"{result['allocation_version']}: {result['assignments']} assignments, "
            f"{'stable' if result['stable'] else 'not stable'}"
        )

    asyncio.run(go())


@app.command()
def topics(
    prefix: Annotated[str, typer.Option(help="only topics starting with this")] = "",
) -> None:
    """Topics with partitions, end offsets and size, each consumer group's lag, DLQ sizes."""
    infos = asyncio.run(kafka_ops.topics(_kafka(), prefix))
    t = Table(title="Kafka topics", title_justify="left")
    for name in ("topic", "partitions", "end offsets", "held", "consumer group lag"):
        t.add_column(name, justify="left" if name in ("topic", "consumer group lag") else "right")
    for i in infos:
        ends = " ".join(str(i.end_offsets[p]) for p in sorted(i.end_offsets))
        lag = ", ".join(f"{g}: {n}" for g, n in sorted(i.lag.items())) or "-"
        style = "red" if i.name.endswith(kafka_ops.DLQ) and i.size else None
        t.add_row(i.name, str(i.partitions), ends, str(i.size), lag, style=style)
    out.print(t)
    dead = sum(i.size for i in infos if i.name.endswith(kafka_ops.DLQ))
    out.print(f"{len(infos)} topics; {dead} dead letter(s) held")


@app.command("dlq-list")
def dlq_list(
    topic: TopicArg,
    limit: Annotated[int, typer.Option(min=1, help="list at most this many")] = 1000,
) -> None:
    """The dead letters of TOPIC: where they came from, their type, key and error."""
    letters = asyncio.run(kafka_ops.dead_letters(_kafka(), topic, limit))
    t = Table(title=f"{kafka_ops.dlq_of(topic)}", title_justify="left")
    for name in ("partition", "offset", "type", "key", "attempts", "error"):
        t.add_column(name, overflow="fold")
    for d in letters:
        t.add_row(str(d.partition), str(d.offset), d.type, d.key, d.attempts, d.error[:160])
    out.print(t)
    out.print(f"{len(letters)} dead letter(s)")


@app.command("dlq-replay")
def dlq_replay(
    topic: TopicArg,
    limit: Annotated[int | None, typer.Option(help="replay at most this many")] = None,
) -> None:
    """Send the dead letters of TOPIC back onto it (resumes where an interrupted one stopped)."""
    n = asyncio.run(dlq.replay(_kafka(), topic, limit))
    out.print(f"{n} dead letter(s) replayed")


@app.command("dlq-purge")
def dlq_purge(
    topic: TopicArg,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
) -> None:
    """Delete the dead letters of TOPIC for good."""
    bootstrap = _kafka()
    if not yes and not typer.confirm(f"delete every dead letter of {kafka_ops.dlq_of(topic)}?"):
        raise OperatorError("nothing deleted", OperatorError.USAGE)
    n = asyncio.run(kafka_ops.purge(bootstrap, topic))
    out.print(f"{n} dead letter(s) deleted from {kafka_ops.dlq_of(topic)}")


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
    target = _target(url, key)
    t0 = time.perf_counter()

    async def go() -> StatsOut:
        async with client(target) as c:
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

    target = _target(url, key)

    async def go() -> AuditOut:
        async with client(target) as c:
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


@app.command("backup")
def backup_command(
    out_file: Annotated[Path, typer.Argument(help="the archive to write (.tar.gz)")],
) -> None:
    """Archive the embedded platform's data (SQLite files, operator key); safe while running."""
    settings = PlatformSettings()
    if settings.store != "sqlite":
        raise OperatorError(
            "backup covers the embedded shape's SQLite data; back up MongoDB with mongodump",
            OperatorError.USAGE,
        )
    names = backups.backup(Path(settings.data_dir), out_file)
    out.print(f"backed up {', '.join(names)} to {out_file}")


@app.command("restore")
def restore_command(
    in_file: Annotated[Path, typer.Argument(help="an archive written by g60 backup")],
    url: Url = None,
) -> None:
    """Restore the embedded platform's data from a backup (the platform must be stopped)."""
    settings = PlatformSettings()
    if settings.store != "sqlite":
        raise OperatorError("restore covers the embedded shape's SQLite data", 2)
    base = (url or os.environ.get("G60_URL") or DEFAULT_URL).rstrip("/")
    try:
        httpx.get(f"{base}/healthz", timeout=1.0)
        running = True
    except httpx.HTTPError:
        running = False
    if running:
        raise OperatorError(f"the platform at {base} is running: stop it first", 2)
    names, aside = backups.restore(in_file, Path(settings.data_dir))
    out.print(f"restored {', '.join(names)} into {settings.data_dir}")
    if aside is not None:
        out.print(f"the files it replaced are in {aside}")


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
