"""Composition root of the subscriptions service: builds it from settings, with overrides for
tests (a fake sender, resolver or clock) and for the all-in-one process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from g60_chassis.aggregates import Aggregates
from g60_chassis.auth import KeyStore
from g60_chassis.bus import EventBus
from g60_chassis.runtime import BuiltService, wire
from g60_chassis.settings import PlatformSettings
from g60_chassis.store import DocumentStore
from subscriptions.adapters.events import KINDS
from subscriptions.adapters.guard import AddressGuard, GuardedBackend, Resolve, system_resolve
from subscriptions.adapters.sender import HttpSender
from subscriptions.domain.endpoint import Endpoint
from subscriptions.entrypoints import api, consumer
from subscriptions.service.deliveries import Deliveries
from subscriptions.service.dispatcher import Dispatcher
from subscriptions.service.endpoints import EndpointsService
from subscriptions.service.fanout import FanOut
from subscriptions.service.journal import INDEXES as JOURNAL_INDEXES
from subscriptions.service.journal import DeliveryJournal
from subscriptions.service.ports import Sender, UrlGuard
from subscriptions.service.retention import Retention
from subscriptions.settings import WebhookSettings

NAME = "subscriptions"
COLLECTIONS: list[str] = []  # publishes no events of its own: no outbox to relay
INDEXES = [("endpoints", "status"), *JOURNAL_INDEXES]


@dataclass
class Subscriptions:
    """The use cases, and the dispatcher that sends what they schedule."""

    endpoints: EndpointsService
    deliveries: Deliveries
    fanout: FanOut
    dispatcher: Dispatcher
    retention: Retention


@dataclass
class SubscriptionsApp(BuiltService[Subscriptions]):
    """A built service that also runs the dispatcher (after the relay, before the bus stops)."""

    close: Callable[[], Awaitable[None]] | None = None

    async def start(self) -> None:
        await super().start()
        await self.service.dispatcher.start()
        await self.service.retention.start()

    async def stop(self) -> None:
        await self.service.retention.stop()
        await self.service.dispatcher.stop()
        if self.close is not None:
            await self.close()
        await super().stop()


def bootstrap(
    settings: PlatformSettings | None = None,
    *,
    store: DocumentStore | None = None,
    bus: EventBus | None = None,
    keys: KeyStore | None = None,
    webhooks: WebhookSettings | None = None,
    sender: Sender | None = None,
    guard: UrlGuard | None = None,
    resolve: Resolve = system_resolve,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SubscriptionsApp:
    w = wire(NAME, COLLECTIONS, settings, store=store, bus=bus, keys=keys)
    hooks = (webhooks or WebhookSettings()).checked(w.settings)
    rules = hooks.rules()
    endpoints = Aggregates(w.store, "endpoints", Endpoint)
    delivery_store = DeliveryJournal(w.store)
    http: HttpSender | None = None
    if sender is None:
        http = HttpSender(
            GuardedBackend(hooks.allow_loopback, resolve),
            connect_timeout_s=hooks.connect_timeout_s,
            timeout_s=hooks.timeout_s,
            max_response_bytes=hooks.max_response_bytes,
            max_connections=hooks.max_connections,
        )
        sender = http
    dispatcher = Dispatcher(
        delivery_store, endpoints, sender, rules, clock, rescan_s=hooks.rescan_s
    )
    deliveries = Deliveries(
        delivery_store, clock, dispatcher.schedule, timedelta(seconds=hooks.lease_s)
    )
    service = Subscriptions(
        EndpointsService(
            endpoints,
            deliveries,
            guard or AddressGuard(hooks.allow_loopback, resolve),
            KINDS,
            rules,
            clock,
            w.keys,
            changed=dispatcher.configure,
        ),
        deliveries,
        FanOut(endpoints, deliveries),
        dispatcher,
        Retention(
            delivery_store,
            w.store,
            timedelta(days=hooks.retention_days),
            clock,
            every_s=hooks.retention_every_s,
        ),
    )
    handler = consumer.platform_events(service.fanout)
    batches = consumer.platform_batches(service.fanout)
    for topic in (w.settings.topic_projects, w.settings.topic_funding, w.settings.topic_matches):
        w.bus.subscribe(topic, w.settings.group(NAME), handler, batches)
    return SubscriptionsApp(
        w, service, [api.router(service)], [], list(INDEXES), close=http.close if http else None
    )
