"""`python -m subscriptions.entrypoints.cli list|replay` (`make webhooks-list`,
`make webhooks-replay`): the operator's webhook commands, straight on the service's store
(G60_STORE: the SQLite file of `make run`, or MongoDB in the distributed shape). A replay marks
the deliveries pending again, same ids; the running service sends them at its next rescan of
the store (`G60_WEBHOOK_RESCAN_S`, 30 s)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer

from g60_chassis.aggregates import Aggregates
from g60_chassis.runtime import make_store
from g60_chassis.settings import PlatformSettings
from g60_chassis.store import DocumentStore
from subscriptions.domain.endpoint import Endpoint
from subscriptions.service.deliveries import Deliveries
from subscriptions.service.journal import DeliveryJournal

cli = typer.Typer(add_completion=False, help=__doc__, no_args_is_help=True)
T = TypeVar("T")


def _run(action: Callable[[DocumentStore], Awaitable[T]]) -> T:
    async def go() -> T:
        store = make_store(PlatformSettings(), "subscriptions")
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(go())


@cli.command("list")
def list_endpoints() -> None:
    """Every webhook endpoint: status (and why disabled), owner, URL, pending deliveries."""

    async def go(store: DocumentStore) -> None:
        journal = DeliveryJournal(store)
        endpoints = await Aggregates(store, "endpoints", Endpoint).every()
        typer.echo(f"{'id':<22} {'status':<9} {'owner':<28} {'pending':>7}  url")
        for e in endpoints:
            pending = await journal.pending_of(e.id)
            owner = f"{e.owner_role}:{e.owner_tenant or e.owner_key_id}"
            typer.echo(f"{e.id:<22} {e.status:<9} {owner:<28} {pending:>7}  {e.url}")
            if e.disabled_reason:
                typer.echo(f"{'':<22} disabled: {e.disabled_reason}")

    _run(go)


@cli.command("replay")
def replay(
    endpoint: Annotated[str, typer.Argument(help="the endpoint id (whe_…)")],
    since: Annotated[str, typer.Argument(help="RFC 3339 time, e.g. 2026-11-28T00:00:00Z")],
) -> None:
    """Send again every delivery of ENDPOINT created since SINCE (same webhook-ids)."""
    try:
        when = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        typer.echo(f"SINCE {since!r} is not an RFC 3339 time", err=True)
        raise typer.Exit(2) from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)

    async def go(store: DocumentStore) -> int:
        if await Aggregates(store, "endpoints", Endpoint).get(endpoint) is None:
            typer.echo(f"no webhook endpoint {endpoint!r}", err=True)
            raise typer.Exit(2)
        deliveries = Deliveries(DeliveryJournal(store), lambda: datetime.now(UTC))
        return await deliveries.replay(endpoint, when)

    typer.echo(f"{_run(go)} deliveries of {endpoint} rescheduled")


if __name__ == "__main__":
    cli()
