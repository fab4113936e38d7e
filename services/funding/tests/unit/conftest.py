"""Fixtures of the funding unit tests: the service built by its own bootstrap on fakes (memory
store, memory bus, memory key store), served over ASGI without a network."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from funding.bootstrap import FundingApp, bootstrap
from funding.entrypoints.app import create
from g60_chassis.auth import KeyStore
from g60_chassis.bus import MemoryBus
from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.settings import PlatformSettings
from g60_chassis.store import Doc, VersionConflict
from g60_contracts.enums import Role
from g60_contracts.funding import OFFER_EXAMPLE

Env = tuple[httpx.AsyncClient, MemoryBus, KeyStore, FundingApp]
Publish = Callable[..., Awaitable[tuple[dict[str, Any], dict[str, Any]]]]


class InterleavingStore(MemoryDocumentStore):
    """The memory store never suspends, so concurrent read-modify-writes would run one after
    the other. This one yields to the event loop around every read and write, as a real
    database round trip does, so racing writers really collide; it counts the collisions."""

    def __init__(self) -> None:
        super().__init__()
        self.conflicts = 0

    async def get(self, collection: str, id: str) -> Doc | None:
        await asyncio.sleep(0)
        return await super().get(collection, id)

    async def insert(self, collection: str, doc: Doc, events: list[Doc] | None = None) -> None:
        await asyncio.sleep(0)
        await super().insert(collection, doc, events)

    async def update(
        self, collection: str, doc: Doc, expected_version: int, events: list[Doc] | None = None
    ) -> int:
        await asyncio.sleep(0)
        try:
            return await super().update(collection, doc, expected_version, events)
        except VersionConflict:
            self.conflicts += 1
            raise


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    bus = MemoryBus(keep_log=True)
    keys = KeyStore(MemoryDocumentStore())
    built = bootstrap(
        PlatformSettings(store="memory"), store=InterleavingStore(), bus=bus, keys=keys
    )
    app = create(built=built)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=120):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            client.headers["Authorization"] = f"Bearer {await keys.create(Role.operator)}"
            yield client, bus, keys, built


@pytest.fixture
def publish(env: Env) -> Publish:
    """Register a funder and publish an offer of it (OFFER_EXAMPLE with overrides)."""
    client = env[0]

    async def _publish(kind: str = "bank", **over: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        r = await client.post("/v1/funders", json={"name": "Bank", "kind": kind})
        assert r.status_code == 201, r.text
        funder = r.json()
        body = {**OFFER_EXAMPLE, "funder_id": funder["id"], **over}
        r = await client.post("/v1/offers", json=body)
        assert r.status_code == 201, r.text
        return funder, r.json()

    return _publish
