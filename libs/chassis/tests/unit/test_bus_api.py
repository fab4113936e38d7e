"""`/v1/bus` on the in-process bus: a handler that fails dead-letters its event; the operator
lists it, replays it (delivered again once the cause is fixed) or purges it."""

from __future__ import annotations

from pathlib import Path

import httpx

from g60_chassis.auth import KeyStore
from g60_chassis.bus import DeliveryPolicy, MemoryBus
from g60_chassis.bus_api import bus_router
from g60_chassis.dead_letters import DeadLetterShelf
from g60_chassis.envelope import Envelope
from g60_chassis.http import create_app
from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.sqlite import SqliteDocumentStore

OP = "bootstrap-operator-key-for-tests-0123456789"


def _client(bus: MemoryBus) -> httpx.AsyncClient:
    app = create_app(
        title="t",
        description="t",
        routers=[bus_router([bus])],
        keys=KeyStore(MemoryDocumentStore(), OP),
        checks={},
    )
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t",
        headers={"Authorization": f"Bearer {OP}"},
    )


async def _poisoned(keeper: DeadLetterShelf | None = None) -> tuple[MemoryBus, list[str]]:
    bus = MemoryBus(policy=DeliveryPolicy(max_attempts=1), keeper=keeper)
    handled: list[str] = []
    broken = {"yes": True}

    async def handler(e: Envelope) -> None:
        if broken["yes"]:
            broken["yes"] = False
            raise ValueError("poison")
        handled.append(e.subject)

    bus.subscribe("t.x", "g", handler)
    await bus.publish("t.x", Envelope(type="t.happened.v1", source="/t", subject="a", data={}))
    return bus, handled


async def test_a_dead_letter_is_listed_and_replayed_once_the_cause_is_gone():
    bus, handled = await _poisoned()
    async with _client(bus) as c:
        state = (await c.get("/v1/bus")).json()
        assert state["kind"] == "memory"
        assert {t["name"]: t["dead_letters"] for t in state["topics"]} == {"t.x": 0, "t.x.dlq": 1}
        (letter,) = (await c.get("/v1/bus/dead-letters", params={"topic": "t.x"})).json()
        assert letter["type"] == "t.happened.v1" and "poison" in letter["error"]
        replayed = await c.post("/v1/bus/dead-letters/replay", params={"topic": "t.x"})
        assert replayed.json() == {"count": 1}
    assert handled == ["a"] and bus.dead_letters == []


async def test_a_purge_deletes_them_and_only_operators_may():
    bus, handled = await _poisoned()
    async with _client(bus) as c:
        refused = await c.delete(
            "/v1/bus/dead-letters", params={"topic": "t.x"}, headers={"Authorization": "Bearer x"}
        )
        assert refused.status_code == 401
        assert (await c.delete("/v1/bus/dead-letters", params={"topic": "t.x"})).json() == {
            "count": 1
        }
        assert (await c.get("/v1/bus/dead-letters", params={"topic": "t.x"})).json() == []
    assert handled == []


async def test_dead_letters_kept_on_sqlite_outlive_a_restart_and_a_purge_removes_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bus.sqlite"
    before, _ = await _poisoned(DeadLetterShelf(SqliteDocumentStore(path)))
    [letter] = before.dead_letters
    await before.stop()

    after = MemoryBus(keeper=DeadLetterShelf(SqliteDocumentStore(path)))  # make run, again
    await after.start()
    await after.start()  # every service of the all-in-one process starts the one bus
    assert [(d.id, d.topic, d.value, d.headers) for d in after.dead_letters] == [
        (letter.id, "t.x.dlq", letter.value, letter.headers)
    ]
    async with _client(after) as c:
        purged = await c.delete("/v1/bus/dead-letters", params={"topic": "t.x"})
        assert purged.json() == {"count": 1}
    await after.stop()

    again = MemoryBus(keeper=DeadLetterShelf(SqliteDocumentStore(path)))
    await again.start()
    assert again.dead_letters == []
    await again.stop()
