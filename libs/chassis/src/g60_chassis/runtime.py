"""Builds the infrastructure a service runs on from settings: its store, the bus and the key
store. Each service's bootstrap calls these and accepts overrides (fakes in tests, a shared
in-process bus in the all-in-one process)."""

from __future__ import annotations

from g60_chassis.auth import KeyStore
from g60_chassis.bus import DeliveryPolicy, EventBus, MemoryBus
from g60_chassis.settings import PlatformSettings
from g60_chassis.store import DocumentStore, MemoryDocumentStore


def make_store(settings: PlatformSettings, service: str) -> DocumentStore:
    if settings.store == "mongo":
        from g60_chassis.mongo import MongoDocumentStore

        return MongoDocumentStore(settings.mongo_url, settings.mongo_database(service))
    if settings.store == "sqlite":
        from g60_chassis.sqlite import SqliteDocumentStore

        return SqliteDocumentStore(settings.sqlite_path(service))
    return MemoryDocumentStore()


def make_bus(settings: PlatformSettings, service: str) -> EventBus:
    policy = DeliveryPolicy(max_attempts=settings.max_attempts)
    if settings.bus == "kafka":
        from g60_chassis.kafka import KafkaBus

        return KafkaBus(
            settings.kafka_bootstrap,
            client_id=f"g60-{service}",
            policy=policy,
            instance_id=f"{service}-{settings.instance_id}" if settings.instance_id else None,
        )
    return MemoryBus(policy=policy)


def make_keys(settings: PlatformSettings) -> KeyStore:
    """One key store for the platform ("auth"), read by every service."""
    return KeyStore(make_store(settings, "auth"), settings.bootstrap_operator_key)
