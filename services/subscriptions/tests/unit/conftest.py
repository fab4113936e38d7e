"""Fixtures of the subscriptions unit tests: the service built by its own bootstrap on fakes
(memory store, memory bus, memory key store, a fake sender and resolver), served over ASGI
without a network. Retries are fast here (a schedule of a few hundredths of a second)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest
from asgi_lifespan import LifespanManager

from g60_chassis.auth import KeyStore
from g60_chassis.bus import MemoryBus
from g60_chassis.envelope import Envelope
from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.settings import PlatformSettings
from g60_contracts.enums import Role
from services.subscriptions.tests.unit.factories import topic_of
from subscriptions.bootstrap import SubscriptionsApp, bootstrap
from subscriptions.domain.delivery import SendResult
from subscriptions.entrypoints.app import create
from subscriptions.service.ports import WebhookRequest
from subscriptions.settings import WebhookSettings

FAST = WebhookSettings(retry_schedule_s=(0.0, 0.02, 0.02, 0.02), rescan_s=0.2, lease_s=0.5)


async def public_dns(host: str, port: int) -> list[str]:
    return ["93.184.216.34"]


@dataclass
class FakeSender:
    """Answers 200 unless `answer` says otherwise; records every request it was given."""

    answer: Callable[[WebhookRequest], SendResult] = lambda r: SendResult(status_code=200)
    delay_s: float = 0.0
    requests: list[WebhookRequest] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    async def send(self, request: WebhookRequest) -> SendResult:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
            self.requests.append(request)
            return self.answer(request)
        finally:
            self.in_flight -= 1

    def ok_ids(self) -> list[str]:
        return [r.message_id for r in self.requests if self.answer(r).ok]


@dataclass
class Env:
    client: httpx.AsyncClient
    bus: MemoryBus
    keys: KeyStore
    built: SubscriptionsApp
    sender: FakeSender
    store: MemoryDocumentStore

    async def as_(self, role: Role, tenant: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.keys.create(role, tenant)}"}

    async def publish(self, event: Envelope) -> None:
        await self.bus.publish(topic_of(event), event)

    async def register(self, headers: dict[str, str] | None = None, **body: object) -> dict:
        payload = {"url": "https://partner.example/hook", "event_types": ["*"], **body}
        r = await self.client.post("/v1/webhook-endpoints", json=payload, headers=headers)
        assert r.status_code == 201, r.text
        return dict(r.json())


async def start(
    store: MemoryDocumentStore, sender: FakeSender, hooks: WebhookSettings = FAST
) -> tuple[SubscriptionsApp, MemoryBus, KeyStore]:
    bus, keys = MemoryBus(), KeyStore(MemoryDocumentStore())
    built = bootstrap(
        PlatformSettings(store="memory", rate_limit_enabled=False),
        store=store,
        bus=bus,
        keys=keys,
        webhooks=hooks,
        sender=sender,
        resolve=public_dns,
    )
    return built, bus, keys


@pytest.fixture
def hooks() -> WebhookSettings:
    return FAST


@pytest.fixture
async def env(hooks: WebhookSettings) -> AsyncIterator[Env]:
    store, sender = MemoryDocumentStore(), FakeSender()
    built, bus, keys = await start(store, sender, hooks)
    app = create(built=built)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=120):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            client.headers["Authorization"] = f"Bearer {await keys.create(Role.operator)}"
            yield Env(client, bus, keys, built, sender, store)
