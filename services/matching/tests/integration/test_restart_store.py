"""A restart of the matching service on the real MongoDB-wire store (FerretDB on PostgreSQL here):
the service starts serving before its engine has loaded, the events that arrive meanwhile are
kept pending and applied once it has, a crash during the load leaves them for the next start,
and nothing is proposed twice; and what a match document holds. The bus is the in-process one
(the store is under test)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from asgi_lifespan import LifespanManager

from g60_chassis.auth import KeyStore
from g60_chassis.bus import MemoryBus
from g60_chassis.envelope import Envelope
from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.mongo import MongoDocumentStore
from g60_chassis.principal import Principal
from g60_chassis.settings import PlatformSettings
from g60_contracts.enums import Role
from g60_contracts.funding import OFFER_EXAMPLE
from g60_contracts.projects import ENTERPRISE_EXAMPLE, PROJECT_EXAMPLE
from matching.bootstrap import MatchingApp, bootstrap
from matching.domain.match import match_id
from matching.entrypoints.app import create
from matching.entrypoints.consumer import funding_events, project_events

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 26, 8, tzinfo=UTC)


def stamp(version: int) -> dict[str, object]:
    return {"version": version, "created_at": T0.isoformat(), "updated_at": T0.isoformat()}


ENTERPRISE = Envelope(
    type="g60.enterprise.registered.v1",
    source="/t",
    subject="ent-1",
    data={**ENTERPRISE_EXAMPLE, "id": "ent-1", "created_at": T0.isoformat()},
)
OFFER = Envelope(
    type="g60.offer.published.v1",
    source="/t",
    subject="off-1",
    data={
        **OFFER_EXAMPLE,
        **stamp(1),
        "id": "off-1",
        "funder_id": "fun-1",
        "funder_kind": "bank",
        "status": "active",
        "remaining_cny": OFFER_EXAMPLE["capacity_cny"],
        "reserved_cny": 0,
        "committed_cny": 0,
        "deals_taken": 0,
    },
)


def project(id: str) -> Envelope:
    data = {**PROJECT_EXAMPLE, **stamp(1), "id": id, "enterprise_id": "ent-1", "status": "open"}
    return Envelope(type="g60.project.submitted.v1", source="/t", subject=id, data=data)


def build(url: str, database: str) -> MatchingApp:
    """One process of the matching service on this database (not started)."""
    return bootstrap(
        PlatformSettings(store="mongo", match_top_k=3),
        store=MongoDocumentStore(url, database, timeout_ms=5000),
        bus=MemoryBus(),
        keys=KeyStore(MemoryDocumentStore()),
        clock=lambda: T0,
    )


@asynccontextmanager
async def running(url: str, database: str, ready_wait_s: float) -> AsyncIterator[MatchingApp]:
    """One process of the matching service on this database, started and stopped."""
    app = build(url, database)
    app.ready_wait_s = ready_wait_s
    app.service.allocation.debounce_s = 3600.0  # no allocation run rewrites the matches here
    async with LifespanManager(create(built=app), startup_timeout=300, shutdown_timeout=300):
        yield app


async def pending(app: MatchingApp) -> list[str]:
    enterprises, projects, offers = await app.service.read.pending()
    return [v.id for v in (*enterprises, *projects, *offers)]


async def test_a_restart_serves_at_once_and_applies_what_came_while_it_loaded(
    mongo_url, unique_names
) -> None:
    database = unique_names.database()
    async with running(mongo_url, database, ready_wait_s=2.0) as first:
        await first.service.loaded.wait()  # 2 s may not do on a cold numba cache
        await project_events(first.service)(ENTERPRISE)
        await funding_events(first.service)(OFFER)
        for i in range(3):
            await project_events(first.service)(project(f"prj-{i}"))
        assert len(await first.service.matches.every()) == 3

    # a process that died while its engine loaded: its event is stored, marked pending
    dying = build(mongo_url, database)
    dying.service.loaded.clear()
    await project_events(dying.service)(project("prj-3"))
    assert await pending(dying) == ["prj-3"]
    assert await dying.service.matches.get(match_id("prj-3", "off-1")) is None
    await dying.store.close()

    async with running(mongo_url, database, ready_wait_s=0.0) as again:
        handle = project_events(again.service)
        await handle(project("prj-4"))  # while loading, or just after
        await handle(project("prj-0"))  # a redelivery: nothing twice
        await again.service.loaded.wait()
        for i in range(5):
            match = await again.service.matches.get(match_id(f"prj-{i}", "off-1"))
            assert match is not None and match.status == "proposed" and match.version == 1, i
        assert len(await again.service.matches.every()) == 5
        assert await pending(again) == []


async def test_a_match_document_holds_its_breakdowns_once_and_its_record_reads_whole(
    mongo_url, unique_names
) -> None:
    """The decisions stored with a match share its score breakdowns (stored once); the audit
    record gives each decision its breakdowns, after a restart as before, and a decision
    stored whole by an older release reads as it was."""
    database = unique_names.database()
    operator = Principal(key_id="k", role=Role.operator)
    mid = match_id("prj-0", "off-1")
    async with running(mongo_url, database, ready_wait_s=2.0) as app:
        await app.service.loaded.wait()  # 2 s may not do on a cold numba cache
        await project_events(app.service)(ENTERPRISE)
        await funding_events(app.service)(OFFER)
        await project_events(app.service)(project("prj-0"))
        await app.service.allocation.refresh()  # an "allocated" decision, beside the match
        doc = await app.store.get("matches", mid)
        assert doc is not None and isinstance(doc["decisions"], str)  # stored as JSON text
        assert doc["allocated"] and doc["version"] == 2  # the flag: a field update
        decisions = json.loads(doc["decisions"])
        assert [d["kind"] for d in decisions] == ["proposed"]
        (logged,) = await app.store.find("match_decisions", {"match_id": mid})
        assert logged["kind"] == "allocated" and isinstance(logged["enterprise_view"], str)
        assert all(d["enterprise_view"] is None for d in decisions)
        assert all(d["funder_view"] is None for d in decisions)
        # an older release's document: nested values, each decision with its own copy
        match = await app.service.matches.get(mid)
        assert match is not None and match.enterprise_view
        views = {"enterprise_view": match.enterprise_view, "funder_view": match.funder_view}
        old = [{**d, **views} for d in decisions]
        await app.store.update("matches", {**doc, "decisions": old, **views}, doc["version"])

    async with running(mongo_url, database, ready_wait_s=0.0) as again:
        await again.service.loaded.wait()
        audit = again.service.proposals.audit
        assert audit is not None
        stored = await again.service.matches.get(mid)
        assert stored is not None
        record = await audit.record(operator, stored)
        assert [d.kind for d in record.decisions] == ["proposed", "allocated"]
        assert all(d.enterprise_view == stored.enterprise_view for d in record.decisions)
        assert all(d.funder_view == stored.funder_view for d in record.decisions)
