"""The expiry pass: a full read of the open matches once, then only the days since the last
pass, by the indexed `expiry_day` (an equality FerretDB answers from an index)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from g60_chassis.aggregates import Aggregates
from g60_chassis.memory_store import MemoryDocumentStore
from matching.domain.match import Match
from matching.service.lifecycle import Lifecycle
from services.matching.tests.unit import factories

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


class Reads(MemoryDocumentStore):
    """Remembers the filters of every find."""

    def __init__(self) -> None:
        super().__init__()
        self.filters: list[dict[str, Any]] = []

    async def find(
        self, collection: str, where: Mapping[str, Any] | None = None, **kw: Any
    ) -> list[dict[str, Any]]:
        self.filters.append(dict(where or {}))
        return await super().find(collection, where, **kw)


class Kinds:
    """The events' kinds, in order (the contract translation is tested elsewhere)."""

    def __init__(self) -> None:
        self.kinds: list[str] = []

    def match(self, kind: str, m: Match) -> list[Any]:
        self.kinds.append(kind)
        return []


def match(id: str, expires_in: timedelta, **over: Any) -> Match:
    return factories.match(id, project_id=f"p-{id}", expires_at=T0 + expires_in, **over)


async def test_later_passes_read_only_the_days_since_and_expire_what_is_due() -> None:
    store = Reads()
    now = [T0]
    matches = Aggregates(store, "matches", Match)
    life = Lifecycle(matches, Kinds(), lambda: now[0])
    for m in (match("a", timedelta(days=1)), match("b", timedelta(days=3))):
        await matches.add(m)
    # an older release's document: no `expiry_day`; the first pass reads every open match
    for id, expires_in in (("c", timedelta(hours=-1)), ("d", timedelta(days=2))):
        old = match(id, expires_in).model_dump(mode="json", exclude={"expiry_day"})
        await store.insert("matches", {**old, "_id": old.pop("id")})

    assert await life.expire_due() == 1
    assert all("status" in f for f in store.filters)
    # the older document not yet due now has its day stored: the passes by day will find it
    assert (await store.get("matches", "d"))["expiry_day"] == "2026-11-28"
    store.filters.clear()

    now[0] = T0 + timedelta(days=1, minutes=1)
    assert await life.expire_due() == 1
    assert [f for f in store.filters if "status" in f] == []  # no full read
    assert {f["expiry_day"] for f in store.filters} == {"2026-11-26", "2026-11-27"}
    assert [(await matches.get(i)).status for i in "abc"] == ["expired", "proposed", "expired"]
    now[0] = T0 + timedelta(days=2, minutes=1)
    assert await life.expire_due() == 1
    assert (await matches.get("d")).status == "expired"


async def test_a_match_proposed_again_after_its_deadline_is_still_found() -> None:
    store = Reads()
    now = [T0]
    matches = Aggregates(store, "matches", Match)
    life = Lifecycle(matches, Kinds(), lambda: now[0])
    await matches.add(match("a", timedelta(days=1), status="retracted"))
    assert await life.expire_due() == 0
    now[0] = T0 + timedelta(days=5)
    assert await life.expire_due() == 0  # retracted: not open
    # proposed again days after its deadline: on today's day, which the next pass reads
    m = await matches.get("a")
    assert m.repropose(now[0]) == ["proposed"]
    await matches.save(m)
    assert m.expiry_day == "2026-12-01"
    now[0] += timedelta(minutes=1)
    assert await life.expire_due() == 1
    assert (await matches.get("a")).status == "expired"
