"""`python -m allinone run|demo|create-key`: the whole platform in one process (make run), one
deal walked end to end (make demo), and the operator's key command."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Annotated

import httpx
import typer

from allinone import keys_cli as keys_commands
from allinone.app import build_parts, create
from allinone.demo import DemoError, walk_deal
from allinone.seed import seed
from g60_chassis.auth import KeyStore
from g60_chassis.serving import serve
from g60_chassis.settings import PlatformSettings
from g60_contracts.enums import Role

cli = typer.Typer(add_completion=False, help=__doc__, no_args_is_help=True)
cli.add_typer(keys_commands.keys_cli, name="keys")
log = logging.getLogger("allinone")


async def operator_key(keys: KeyStore, data_dir: Path) -> str:
    """The operator key kept in the data folder for the embedded default (created once)."""
    path = data_dir / "operator.key"
    if path.exists():
        key = path.read_text().strip()
        if await keys.authenticate(key) is not None:
            return key
    key = await keys.create(Role.operator, note="make run")
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


async def _wait_healthy(client: httpx.AsyncClient) -> None:
    for _ in range(200):
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get("/healthz")).status_code == 200:
                return
        await asyncio.sleep(0.05)


async def _seed_and_report(base: str, key: str, settings: PlatformSettings) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        await _wait_healthy(client)
        counts = await seed(client, progress=lambda m: typer.echo(f"  {m}"))
        await asyncio.sleep(0.5)  # let the matcher take in the last events
        offers = (await client.get("/v1/offers", params={"limit": 200})).json()["items"]
        names = {o["id"]: o["name"] for o in offers}
        page = (await client.get("/v1/projects", params={"limit": 200})).json()
        rows = []
        for project in page["items"]:
            matches = (await client.get(f"/v1/projects/{project['id']}/matches")).json()["items"]
            proposed = [m for m in matches if m["status"] == "proposed"]
            if proposed:
                rows.append((project, proposed))
        typer.echo(f"\n  {counts['projects']} projects, {len(rows)} with proposals. Top matches:")
        typer.echo(f"  {'project':<44} {'amount CNY':>12}  {'best offer':<26} score  offers")
        for project, proposed in sorted(rows, key=lambda r: -r[1][0]["score"])[:12]:
            best = proposed[0]
            typer.echo(
                f"  {project['title'][:44]:<44} {project['amount_cny']:>12,}  "
                f"{names.get(best['offer_id'], best['offer_id'])[:26]:<26} {best['score']:.2f}  "
                f"{len(proposed)}"
            )
        typer.echo(f"\n  try: curl -H 'Authorization: Bearer {key}' {base}/v1/projects\n")


@cli.command()
def run(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    seed_demo: Annotated[
        bool, typer.Option("--seed/--no-seed", help="seed the demo catalogue")
    ] = True,
) -> None:
    """Serve the whole platform on one port (embedded: in-process bus, SQLite files)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the seeding client's requests
    settings = PlatformSettings()
    parts = build_parts(settings)
    base = f"http://{host}:{port}"

    async def started() -> None:
        key = await operator_key(parts[0].keys, settings.data_dir)
        typer.echo(
            f"\nG60 platform on {base} ({settings.bus} bus, {settings.store} store"
            f"{', data in ' + str(settings.data_dir) if settings.store == 'sqlite' else ''})\n"
            f"  API docs      {base}/docs\n  AsyncAPI      {base}/asyncapi\n"
            f"  dashboard     {base}/dashboard (sign in with the operator key)\n"
            f"  operator key  {key}   (also in {settings.data_dir / 'operator.key'})\n"
        )
        if seed_demo:
            asyncio.get_running_loop().create_task(_seed_and_report(base, key, settings))

    app = create(settings, parts, on_started=started)
    serve(app, host, port, keep_alive_s=settings.http_keep_alive_s, log_level="warning")


@cli.command()
def demo(
    url: Annotated[
        str | None, typer.Option(help="a running platform; default: one in-process")
    ] = None,
    key: Annotated[str | None, typer.Option(envvar="G60_OPERATOR_KEY", help="operator key")] = None,
) -> None:
    """Walk one deal end to end and print each step."""
    try:
        asyncio.run(_demo(url, key))
    except DemoError as exc:
        typer.echo(f"demo failed: {exc}", err=True)
        raise typer.Exit(1) from exc


async def _demo(url: str | None, key: str | None) -> None:
    if url is not None:
        settings = PlatformSettings()
        key = key or (settings.data_dir / "operator.key").read_text().strip()
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            await walk_deal(client, key, say=typer.echo)
        return
    from asgi_lifespan import LifespanManager

    with tempfile.TemporaryDirectory() as tmp:
        settings = PlatformSettings(data_dir=Path(tmp), bus="memory", store="sqlite")
        parts = build_parts(settings)
        app = create(settings, parts)
        async with LifespanManager(app, startup_timeout=120, shutdown_timeout=120):
            key = await parts[0].keys.create(Role.operator, note="demo")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
                typer.echo("(an in-process platform on a temporary data folder)")
                await walk_deal(client, key, say=typer.echo)


@cli.command("create-key")
def create_key(
    role: Annotated[Role, typer.Option(help="operator, enterprise, funder or partner")],
    tenant: Annotated[str | None, typer.Option(help="enterprise or funder id")] = None,
    note: Annotated[str, typer.Option(help="what the key is for")] = "",
) -> None:
    """Issue an API key (stored hashed; printed once); same as `keys create`."""
    keys_commands.create(role, tenant, note, None)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli()
