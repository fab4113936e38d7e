"""What the matcher asks of its store per consumed batch of new needs (issue 8: on FerretDB each
call is a round trip and a PostgreSQL statement or more). A batch of new projects costs one
insert of their views, one of the decisions' inputs (the views' and the inputs' together, in
flight at once), one of their matches and one of the batch document holding the matches'
events (`g60_chassis.batches`), whatever its size; nothing it already holds in its read model
is read again; a redelivered batch writes nothing."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from g60_chassis.memory_store import MemoryDocumentStore
from g60_contracts.events import ProjectSnapshot
from matching.entrypoints.consumer import project_batches
from services.matching.tests.unit.test_project_batches import project
from services.matching.tests.unit.test_restart import restarted
from services.matching.tests.unit.test_use_cases import Market

OFFERS = 12


class CountingStore:
    """The memory store, counting each call by (operation, collection), and noting for each
    call the calls in flight when it started (`overlaps`). With a `latency`, each call takes
    that long first, as a round trip would (calls issued together are in flight together)."""

    def __init__(self, inner: MemoryDocumentStore, latency: float = 0.0) -> None:
        self.inner, self.latency = inner, latency
        self.calls: Counter[tuple[str, str]] = Counter()
        self.overlaps: list[tuple[tuple[str, str], set[tuple[str, str]]]] = []
        self.order: list[tuple[str, tuple[str, str]]] = []  # ("start" | "end", call)
        self._flying: Counter[tuple[str, str]] = Counter()

    def __getattr__(self, name: str) -> Any:
        call = getattr(self.inner, name)
        if name.startswith("_") or not callable(call):
            return call

        async def counted(*args: Any, **kw: Any) -> Any:
            key = (name, str(args[0]) if args else "")
            self.calls[key] += 1
            self.overlaps.append((key, {k for k, n in self._flying.items() if n}))
            self._flying[key] += 1
            self.order.append(("start", key))
            try:
                if self.latency:
                    await asyncio.sleep(self.latency)
                return await call(*args, **kw)
            finally:
                self._flying[key] -= 1
                self.order.append(("end", key))

        return counted


async def counted_market() -> tuple[Market, CountingStore]:
    market = Market(top_k=10)
    market.svc.allocation.debounce_s = 3600.0  # the allocation's flags: not in these counts
    await market.enterprise()
    for i in range(OFFERS):
        await market.offer(f"off-{i}")
    return market, counting(market)


def counting(market: Market) -> CountingStore:
    """The market's service reading and writing through a `CountingStore`."""
    store = CountingStore(market.store)
    svc = market.svc
    audit = svc.proposals.new.audit
    assert audit is not None
    for aggregates in (svc.matches, svc.read.enterprises, svc.read.projects, svc.read.offers):
        aggregates.store = store  # type: ignore[assignment]
    audit.inputs.store = store  # type: ignore[assignment]
    if audit.log is not None:
        audit.log.store = store  # type: ignore[assignment]
    return store


async def consumed(market: Market, store: CountingStore, ids: list[str]) -> Counter[Any]:
    store.calls.clear()
    store.overlaps.clear()
    store.order.clear()
    handle: Callable[[Any], Awaitable[None]] = project_batches(market.svc)
    await handle([project(i, 1) for i in ids])
    return Counter(store.calls)


async def test_a_batch_of_new_needs_costs_four_store_calls_whatever_its_size() -> None:
    market, store = await counted_market()
    # the first decisions citing the offers store the offers' inputs too (one insert more)
    first = await consumed(market, store, ["p-first"])
    assert first[("insert_many", "decision_inputs")] == 2
    for size in (1, 16):
        ids = [f"p{size}-{i}" for i in range(size)]
        calls = await consumed(market, store, ids)
        assert calls == {
            ("insert_many", "project_views"): 1,
            ("insert_many", "decision_inputs"): 1,
            ("insert_many", "matches"): 1,
            ("insert", "_outbox_matches"): 1,  # their events, one document for the batch
        }
        for pid in ids:  # and each need got its top k of proposals
            assert len(await market.store.find("matches", {"project_id": pid})) == 10


async def test_a_batch_of_new_needs_waits_for_three_writes_in_a_row_not_four() -> None:
    """The decisions' inputs of the batch's projects go in while their views do (both are
    known before the engine runs); the matches' batch document and insert follow."""
    market, store = await counted_market()
    store.latency = 0.001
    await consumed(market, store, ["p-first"])  # the offers' inputs stored by now
    await consumed(market, store, [f"p-{i}" for i in range(8)])
    started = dict(store.overlaps)
    views, inputs = ("insert_many", "project_views"), ("insert_many", "decision_inputs")
    assert views in started[inputs] or inputs in started[views]
    for later in (("insert", "_outbox_matches"), ("insert_many", "matches")):
        assert not {views, inputs} & started[later]


async def test_a_batch_reads_its_enterprises_only_once_their_projects_views_are_stored() -> None:
    """Enterprises and projects come on different partitions, handled concurrently: an
    enterprise's handler stores its view, then looks for the projects waiting for it; a
    project batch must store its views before it looks for their enterprises, or both can
    look first and the project is never matched (write13's first cut read them together)."""
    market, store = await counted_market()
    store.latency = 0.001
    await consumed(market, store, ["p-first"])
    unknown = "ent-later"  # not held in memory: read from the store
    await consumed(market, store, ["p-1"])
    store.order.clear()
    await project_batches(market.svc)([project("p-2", 1, enterprise_id=unknown)])
    views, enterprise = ("insert_many", "project_views"), ("get", "enterprise_views")
    # (the decisions' inputs may read it meanwhile: they do not decide what is matched)
    assert ("start", enterprise) in store.order[store.order.index(("end", views)) :]
    await market.enterprise(unknown)  # then it arrives: the project waiting is matched
    assert await market.store.find("matches", {"project_id": "p-2"})


async def test_a_redelivered_batch_reads_the_matches_and_writes_nothing() -> None:
    market, store = await counted_market()
    ids = [f"p-{i}" for i in range(8)]
    await consumed(market, store, ids)
    before = await market.store.find("matches", limit=1000)
    calls = await consumed(market, store, ids)
    writes = {k: n for k, n in calls.items() if k[0] != "get" and k[0] != "find"}
    assert writes == {}  # every view held in memory, at this version: nothing to keep
    assert calls[("find", "matches")] == len(ids)  # not fresh: each project's matches read
    assert ("get", "project_views") not in calls  # the views are held in memory
    assert await market.store.find("matches", limit=1000) == before


async def test_a_view_changed_behind_the_memory_is_read_again_and_kept() -> None:
    market, store = await counted_market()
    await consumed(market, store, ["p-1"])
    doc = await market.store.get("project_views", "p-1")
    assert doc is not None
    # another writer stores version 2 of the view: the memory still holds version 1
    await market.store.update("project_views", {**doc, "source_version": 2}, doc["version"])
    data = {**project("p-1", 3, amount_cny=90_000_000).data}
    kept = await market.svc.read.keep(
        market.svc.read.projects, ProjectSnapshot.model_validate(data), False
    )
    stored = await market.store.get("project_views", "p-1")
    assert kept and stored is not None
    assert (stored["source_version"], json.loads(stored["data"])["amount_cny"]) == (3, 90_000_000)
    # a redelivery of version 2 is recognised from memory, without a read
    store.calls.clear()
    old = ProjectSnapshot.model_validate({**data, "version": 2})
    assert not await market.svc.read.keep(market.svc.read.projects, old, False)
    assert not store.calls


async def test_a_batch_whose_first_delivery_died_after_its_views_is_proposed_once() -> None:
    market, _ = await counted_market()
    batch = [project(f"p-{i}", 1) for i in range(4)]
    snapshots = [ProjectSnapshot.model_validate(e.data) for e in batch]
    # the first delivery stored the views, then its process died before the proposals
    await market.svc.read.keep_new(market.svc.read.projects, snapshots)
    app = restarted(market, top_k=10)  # its memory is empty: the views exist, none is fresh
    await app.service.rebuild()
    await project_batches(app.service)(batch)
    proposed = await market.store.find("matches", limit=1000)
    assert len(proposed) == 4 * 10
    await project_batches(app.service)(batch)  # and redelivered once more: nothing new
    assert await market.store.find("matches", limit=1000) == proposed
