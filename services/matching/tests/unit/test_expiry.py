"""The expiry pass on the memory store: a full pass on the first pass of each UTC day, then only
the day's bucket (`expires_on`), and nothing due is missed across days the service skipped."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from g60_chassis.store import Doc
from services.matching.tests.unit.test_use_cases import T0, Market


class Now:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at


async def test_a_day_is_read_whole_once_then_by_its_bucket() -> None:
    now = Now()
    reads: list[Mapping[str, Any]] = []
    market = Market(clock=now)
    original = market.store.find

    async def find(
        collection: str,
        where: Mapping[str, Any] | None = None,
        *,
        after_id: str | None = None,
        limit: int = 100,
    ) -> list[Doc]:
        if collection == "matches":
            reads.append(dict(where or {}))
        return await original(collection, where, after_id=after_id, limit=limit)

    market.store.find = find  # type: ignore[method-assign]
    await market.enterprise()
    await market.offer("soon", response_deadline_days=1)
    await market.offer("later", response_deadline_days=3)
    await market.project("prj-1")
    expire = market.svc.lifecycle.expire_due
    soon = await market.store.get("matches", (await market.match("prj-1", "soon")).id)
    assert soon is not None and soon["expires_on"] == "2026-11-27"  # stored, so indexable

    assert await expire() == 0  # the first pass after a start reads every open match
    assert {"status": "proposed"} in reads

    now.at, reads[:] = T0 + timedelta(hours=2), []
    assert await expire() == 0  # later the same day: the day's bucket only
    assert reads == [{"expires_on": "2026-11-26"}]

    now.at, reads[:] = T0 + timedelta(hours=23), []  # 07:00 next day: a full pass, none due
    assert await expire() == 0
    assert {"status": "proposed"} in reads

    now.at, reads[:] = T0 + timedelta(days=1, minutes=1), []
    assert await expire() == 1  # due at 08:00 on the 27th, found in its bucket
    assert reads == [{"expires_on": "2026-11-27"}]
    expired = await market.match("prj-1", "soon")
    assert expired.status == "expired" and expired.expires_on is None
    assert (await market.events("prj-1", "soon"))[-1] == "g60.match.expired.v1"

    now.at = T0 + timedelta(days=5)  # days nobody ran a pass: the day's full pass finds it
    assert await expire() == 1
    assert (await market.match("prj-1", "later")).status == "expired"
    assert await expire() == 0  # and nothing twice


async def test_a_match_without_a_bucket_expires_in_the_full_pass() -> None:
    # documents written before `expires_on` existed have none: the day's full pass finds them
    now = Now()
    market = Market(clock=now)
    await market.enterprise()
    await market.offer("off-1", response_deadline_days=1)
    await market.project("prj-1")
    match = await market.match("prj-1", "off-1")
    doc = await market.store.get("matches", match.id)
    assert doc is not None
    del doc["expires_on"]
    doc.pop("outbox", None)
    await market.store.update("matches", doc, doc["version"])
    stored = await market.store.get("matches", match.id)
    assert stored is not None and "expires_on" not in stored

    now.at = T0 + timedelta(days=1, hours=1)
    assert await market.svc.lifecycle.expire_due() == 1
    assert (await market.match("prj-1", "off-1")).status == "expired"
