"""A restart of the matching service on fakes (memory store and bus): the engine loads in the
background while the service serves and consumes; the events that arrive meanwhile are kept
pending in the read model and applied once it has loaded — none lost, none applied twice, the
stored read model the source of truth (also across a crash during the load)."""

from __future__ import annotations

import asyncio

import pytest

from g60_chassis.auth import KeyStore
from g60_chassis.bus import MemoryBus
from g60_chassis.envelope import Envelope
from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.settings import PlatformSettings
from g60_contracts.events import ProjectSnapshot
from g60_contracts.projects import PROJECT_EXAMPLE
from matching.bootstrap import MatchingApp, bootstrap
from matching.domain.match import match_id
from matching.entrypoints.consumer import funding_events, project_events
from matching.service.queries import EngineLoading
from services.matching.tests.unit.test_use_cases import OPERATOR, T0, Market, offer_data


def restarted(market: Market, top_k: int = 3) -> MatchingApp:
    """Another process of the service on the same store (the engine not loaded yet)."""
    return bootstrap(
        PlatformSettings(store="memory", match_top_k=top_k),
        store=market.store,
        bus=MemoryBus(),
        keys=KeyStore(MemoryDocumentStore()),
        clock=lambda: T0,
    )


def project_event(id: str, version: int, status: str = "open") -> Envelope:
    data = {
        **PROJECT_EXAMPLE,
        "enterprise_id": "ent-1",
        "id": id,
        "status": status,
        "version": version,
        "created_at": T0.isoformat(),
        "updated_at": T0.isoformat(),
    }
    kind = "submitted" if status == "open" else "withdrawn"
    return Envelope(type=f"g60.project.{kind}.v1", source="/t", subject=id, data=data)


async def pending(app: MatchingApp) -> list[str]:
    enterprises, projects, offers = await app.service.read.pending()
    return [v.id for v in (*enterprises, *projects, *offers)]


@pytest.fixture
async def market() -> Market:
    m = Market()
    await m.enterprise()
    await m.offer("off-1")
    return m


async def test_while_the_engine_loads_an_event_is_kept_pending_then_applied(
    market: Market,
) -> None:
    app = restarted(market)
    app.service.loaded.clear()  # as on start, while the engine loads
    await project_events(app.service)(project_event("prj-1", 1))  # returns at once
    assert await pending(app) == ["prj-1"]
    assert await app.service.matches.every() == []
    with pytest.raises(EngineLoading):
        await app.service.queries.explain(OPERATOR, "prj-1", None)

    assert await app.service.rebuild() == 1  # the stored project is loaded with the rest
    assert app.service.loading.caught_up == 1
    match = await app.service.matches.get(match_id("prj-1", "off-1"))
    assert match is not None and match.status == "proposed" and match.version == 1
    assert await pending(app) == []
    assert (await market.events("prj-1", "off-1")) == ["g60.match.proposed.v1"]


async def test_a_crash_during_the_load_leaves_the_marks_for_the_next_start(
    market: Market,
) -> None:
    dying = restarted(market)
    dying.service.loaded.clear()
    await project_events(dying.service)(project_event("prj-1", 1))  # offset committed; then -9
    again = restarted(market)
    await again.service.rebuild()
    match = await again.service.matches.get(match_id("prj-1", "off-1"))
    assert match is not None and match.status == "proposed"
    assert await pending(again) == []


async def test_a_redelivery_during_the_load_finishes_what_a_crash_cut_short(
    market: Market,
) -> None:
    event = project_event("prj-1", 1)
    # the first delivery stored the project's view, then the process died before the proposals
    svc = market.svc
    await svc.read.keep(svc.read.projects, ProjectSnapshot.model_validate(event.data), False)
    app = restarted(market)
    app.service.loaded.clear()
    await project_events(app.service)(event)  # redelivered: not newer, but marked all the same
    assert await pending(app) == ["prj-1"]
    await app.service.rebuild()
    match = await app.service.matches.get(match_id("prj-1", "off-1"))
    assert match is not None and match.status == "proposed"


async def test_an_offer_withdrawn_during_the_load_hands_its_projects_to_the_next_one() -> None:
    market = Market(top_k=1)
    await market.enterprise()
    await market.offer("off-1")
    await market.offer("off-2", pricing={"rate_bp": 420})
    await market.project("prj-1")
    (first,) = [m.offer_id for m in await market.svc.matches.every()]
    other = "off-2" if first == "off-1" else "off-1"

    app = restarted(market, top_k=1)
    app.service.loaded.clear()
    withdrawn = offer_data(first, market.versions[first] + 1, "withdrawn")
    await funding_events(app.service)(
        Envelope(type="g60.offer.withdrawn.v1", source="/t", subject=first, data=withdrawn)
    )
    # the engine loads the market without the withdrawn offer: no delta says who held it
    await app.service.rebuild()
    gone = await app.service.matches.get(match_id("prj-1", first))
    assert gone is not None and gone.status == "retracted"
    taken = await app.service.matches.get(match_id("prj-1", other))
    assert taken is not None and taken.status == "proposed"


async def test_events_during_the_load_and_its_catch_up_are_each_applied(market: Market) -> None:
    app = restarted(market)
    handle = project_events(app.service)
    app.service.loaded.clear()  # as start does before the consumers run
    loading = asyncio.create_task(app.service.rebuild())
    for i in range(40):
        await handle(project_event(f"prj-{i}", 1))
        await asyncio.sleep(0)  # the load and its catch-up go on meanwhile
    await loading
    for i in range(40, 45):  # after the load: the ordinary path
        await handle(project_event(f"prj-{i}", 1))
    for i in range(45):
        match = await app.service.matches.get(match_id(f"prj-{i}", "off-1"))
        assert match is not None and match.status == "proposed" and match.version == 1, i
    assert await pending(app) == []


async def test_the_service_starts_serving_before_its_engine_has_loaded(market: Market) -> None:
    app = restarted(market)
    app.ready_wait_s = 0.0  # as with a large market: start returns before the load ends
    await app.prepare()
    try:
        await project_events(app.service)(project_event("prj-1", 1))
        assert app._load is not None
        await app._load
        assert app.service.loaded.is_set()
        match = await app.service.matches.get(match_id("prj-1", "off-1"))
        assert match is not None and match.status == "proposed"
        assert await pending(app) == []
    finally:
        await app.service.allocation.stop()
