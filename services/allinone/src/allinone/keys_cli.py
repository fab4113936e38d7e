"""`python -m allinone keys create|list|revoke|rotate` (`make keys-*`): the operator's key
commands, straight on the platform's key store (G60_STORE: the SQLite files of `make run`, or
the shared MongoDB of the distributed shape). A running service refuses a revoked key
within G60_KEY_CACHE_S (1 s): it reuses a key's record that long."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, TypeVar

import typer

from g60_chassis.auth import KeyStore
from g60_chassis.runtime import make_keys, make_store
from g60_chassis.settings import PlatformSettings
from g60_contracts.enums import Role

keys_cli = typer.Typer(add_completion=False, help=__doc__, no_args_is_help=True)
T = TypeVar("T")
OWNER = {Role.enterprise: ("projects", "enterprises"), Role.funder: ("funding", "funders")}


def _run(action: Callable[[KeyStore], Awaitable[T]]) -> T:
    async def go() -> T:
        keys = make_keys(PlatformSettings())
        try:
            return await action(keys)
        finally:
            await keys.close()

    return asyncio.run(go())


async def tenant_exists(settings: PlatformSettings, role: Role, tenant: str) -> bool:
    service, collection = OWNER[role]
    store = make_store(settings, service)
    try:
        return await store.get(collection, tenant) is not None
    finally:
        await store.close()


@keys_cli.command("create")
def create(
    role: Annotated[Role, typer.Option(help="operator, enterprise, funder or partner")],
    tenant: Annotated[str | None, typer.Option(help="enterprise or funder id")] = None,
    note: Annotated[str, typer.Option(help="what the key is for")] = "",
    days: Annotated[int | None, typer.Option(help="valid for this many days")] = None,
) -> None:
    """Issue an API key (stored hashed; printed once). Its tenant must exist."""
    if (
        role in OWNER
        and tenant
        and not asyncio.run(tenant_exists(PlatformSettings(), role, tenant))
    ):
        typer.echo(f"no {role.value} {tenant!r}", err=True)
        raise typer.Exit(2)
    expires = datetime.now().astimezone() + timedelta(days=days) if days else None
    try:
        typer.echo(_run(lambda k: k.create(role, tenant, note, expires)))
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


@keys_cli.command("list")
def list_keys(
    tenant: Annotated[str | None, typer.Option(help="only this tenant's")] = None,
) -> None:
    """Every key: id, role, tenant, state, expiry, note (never a secret)."""

    async def all_keys(keys: KeyStore) -> None:
        after = None
        while page := await keys.list(after, 200, tenant):
            for k in page:
                state = "revoked" if k.revoked else "live"
                expiry = k.expires_at.isoformat() if k.expires_at else "-"
                tenant_id = k.tenant_id or "-"
                typer.echo(f"{k.id}  {k.role.value:10} {tenant_id:24} {state:8} {expiry}  {k.note}")
            after = page[-1].id

    _run(all_keys)


@keys_cli.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="the key id (g60_<id>.…)")]) -> None:
    """Revoke a key: every running service refuses it within G60_KEY_CACHE_S (1 s)."""
    info = _run(lambda k: k.revoke(key_id))
    typer.echo(f"revoked {info.id} ({info.role.value} {info.tenant_id or ''})")


@keys_cli.command("rotate")
def rotate(
    key_id: Annotated[str, typer.Argument(help="the key id to replace")],
    overlap: Annotated[int, typer.Option(help="seconds the old key keeps working")] = 86_400,
) -> None:
    """Issue a successor (printed once); the old key stops after the overlap."""
    key, _ = _run(lambda k: k.rotate(key_id, timedelta(seconds=overlap)))
    typer.echo(key)
