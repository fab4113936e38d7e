"""Builds the infrastructure a service runs on from settings: its store, the bus and the key
store. Each service's bootstrap calls these and accepts overrides (fakes in tests, a shared
in-process bus in the all-in-one process)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from fastapi import APIRouter

from g60_chassis.auth import KeyStore
from g60_chassis.bus import DeliveryPolicy, EventBus, MemoryBus, unreachable
from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.outbox import OutboxRelay
from g60_chassis.ratelimit import (
    Buckets,
    Limits,
    MemoryBuckets,
    Rate,
    RateLimiter,
    SharedBuckets,
)
from g60_chassis.settings import PlatformSettings
from g60_chassis.store import DocumentStore
from g60_chassis.synced_buckets import SyncedBuckets
from g60_contracts.enums import Role

S = TypeVar("S")


def make_store(settings: PlatformSettings, service: str) -> DocumentStore:
    if settings.store == "mongo":
        from g60_chassis.mongo import MongoDocumentStore

        return MongoDocumentStore(
            settings.mongo_url, settings.mongo_database(service), max_pool=settings.mongo_max_pool
        )
    if settings.store == "sqlite":
        from g60_chassis.sqlite import SqliteDocumentStore

        return SqliteDocumentStore(settings.sqlite_path(service))
    return MemoryDocumentStore()


def make_bus(settings: PlatformSettings, service: str) -> EventBus:
    transient = unreachable
    if settings.store == "mongo":
        from g60_chassis.mongo import unavailable

        def transient(exc: BaseException) -> bool:
            return unreachable(exc) or unavailable(exc)

    policy = DeliveryPolicy(max_attempts=settings.max_attempts, transient=transient)
    if settings.bus == "kafka":
        from g60_chassis.kafka import KafkaBus

        return KafkaBus(
            settings.kafka_bootstrap,
            client_id=f"g60-{service}",
            policy=policy,
            instance_id=f"{service}-{settings.instance_id}" if settings.instance_id else None,
            replication_factor=settings.kafka_replication_factor,
            min_insync_replicas=settings.kafka_min_insync_replicas,
            send_timeout_s=settings.kafka_send_timeout_s,
            producer_stuck_s=settings.kafka_producer_stuck_s,
            fetch_min_bytes=settings.kafka_fetch_min_bytes,
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
            sparse_fetch_min_bytes=settings.kafka_sparse_fetch_min_bytes,
        )
    if settings.store == "memory":
        return MemoryBus(policy=policy)
    from g60_chassis.dead_letters import DeadLetterShelf

    return MemoryBus(policy=policy, keeper=DeadLetterShelf(make_store(settings, "bus")))


def make_limiter(settings: PlatformSettings, keys: KeyStore) -> RateLimiter | None:
    """The rate limiter: buckets in this process (embedded), or on the key store every service
    shares (distributed: `G60_STORE=mongo`), so a key's bucket is one across the services."""
    if not settings.rate_limit_enabled:
        return None
    shared = settings.rate_limit_store == "shared" or (
        settings.rate_limit_store == "auto" and settings.store == "mongo"
    )
    local = MemoryBuckets()
    buckets: Buckets = local
    if shared and settings.rate_limit_sync_s > 0:
        buckets = SyncedBuckets(keys.store, sync_s=settings.rate_limit_sync_s)
    elif shared:
        buckets = SharedBuckets(keys.store)
    limits = Limits(
        per_key=Rate(settings.rate_key_per_s, settings.rate_key_burst),
        per_address=Rate(settings.rate_address_per_s, settings.rate_address_burst),
        auth_failures=Rate(
            settings.rate_auth_failures_per_min / 60.0, settings.rate_auth_failures_burst
        ),
    )
    return RateLimiter(buckets, limits, addresses=local)


def make_keys(settings: PlatformSettings) -> KeyStore:
    """One key store for the platform ("auth"), read by every service."""
    return KeyStore(
        make_store(settings, "auth"),
        settings.bootstrap_operator_key,
        cache_s=settings.key_cache_s,
    )


@dataclass
class Wiring:
    """What every service runs on: its store, the bus, the key store and its outbox relay."""

    settings: PlatformSettings
    store: DocumentStore
    bus: EventBus
    keys: KeyStore
    relay: OutboxRelay


def wire(
    service: str,
    collections: list[str],
    settings: PlatformSettings | None = None,
    *,
    store: DocumentStore | None = None,
    bus: EventBus | None = None,
    keys: KeyStore | None = None,
) -> Wiring:
    """Build a service's infrastructure from settings; every part can be overridden (fakes in
    tests, one shared bus and key store in the all-in-one process)."""
    settings = settings or PlatformSettings()
    store = store or make_store(settings, service)
    bus = bus or make_bus(settings, service)
    relay = OutboxRelay(
        store,
        bus,
        collections,
        interval_s=settings.outbox_interval_s,
        delete_after_s=settings.outbox_delete_after_s,
    )
    return Wiring(settings, store, bus, keys or make_keys(settings), relay)


@dataclass
class BuiltService(Generic[S]):
    """A built service: its use cases, HTTP routers, the topics it publishes and the indexes
    its queries need, on its wiring. `service_app.build_asgi` runs one or several of these."""

    wiring: Wiring
    service: S
    routers: list[APIRouter] = field(default_factory=list)
    publishes: list[str] = field(default_factory=list)
    indexes: list[tuple[str, str]] = field(default_factory=list)
    unique_indexes: list[tuple[str, str]] = field(default_factory=list)
    # the tenants this service owns, for binding keys: role → "does this id exist?"
    tenants: dict[Role, Callable[[str], Awaitable[bool]]] = field(default_factory=dict)

    @property
    def settings(self) -> PlatformSettings:
        return self.wiring.settings

    @property
    def store(self) -> DocumentStore:
        return self.wiring.store

    @property
    def bus(self) -> EventBus:
        return self.wiring.bus

    @property
    def keys(self) -> KeyStore:
        return self.wiring.keys

    @property
    def relay(self) -> OutboxRelay:
        return self.wiring.relay

    async def ensure_indexes(self) -> None:
        """The indexes its queries need (idempotent; the lifespan's first step, and what a
        benchmark or test that drives the service without its lifespan calls)."""
        for collection, key in self.indexes:
            await self.store.ensure_index(collection, key)
        for collection, key in self.unique_indexes:
            await self.store.ensure_index(collection, key, unique=True)

    async def prepare(self) -> None:
        """Before the consumers start (e.g. rebuild an in-memory read model)."""

    async def start(self) -> None:
        await self.relay.start()

    async def stop(self) -> None:
        await self.relay.stop()
