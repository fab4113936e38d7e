"""The read model: the newest snapshot of every enterprise, project and offer the matching
service heard of, stored as it came (contract JSON) and read back as contract models.

This process is the only writer of its views (one consumer of the projects and funding topics),
so it keeps the views it wrote or read in memory (`Views`) and reads the store only for the
others: per need, the matcher used to read its project's view before writing it, its
enterprise's view once per batch and once per proposal, and each proposed offer's view (~6
reads of FerretDB per need). A view in memory that is stale all the same (another instance
wrote it) costs nothing but a retry: every write is a compare-and-set on the stored version,
and a lost one drops the memory and reads the store again."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TypeVar

from pydantic import BaseModel

from g60_chassis.aggregates import Aggregates, retry_on_conflict
from g60_chassis.store import VersionConflict
from g60_contracts.events import EnterpriseRegistered, OfferSnapshot, ProjectSnapshot
from matching.domain.results import Proposal
from matching.service.ports import View

LOAD_PAGE = 2_000  # documents per read when the engine loads (~0.1 s of the event loop each)
LOAD_PAUSE = 0.02  # s between them: the API and the consumers run meanwhile (see `every`)
S = TypeVar("S", bound=BaseModel)
REMEMBERED = 10_000  # views of one collection kept in memory (the least recently used go):
# every offer and enterprise of the corridor, the newest needs (~2.6 KB a project view: ~26 MB)


class Views:
    """The views of one collection this process last wrote or read, the least recently used
    dropped past `size` (an `OrderedDict`: the few lines of an LRU are not worth a dependency).
    Callers get and put whole `View`s and never change one they got (they change a copy)."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self.size = size
        self._views: OrderedDict[str, View] = OrderedDict()
        # id → the contract model of the view held (validated once per view, not per read:
        # a wide offer event read each of its ~150 projects' views, ~40 µs of validation each)
        self._models: dict[str, BaseModel] = {}

    def get(self, id: str) -> View | None:
        view = self._views.get(id)
        if view is not None:
            self._views.move_to_end(id)
        return view

    def put(self, view: View) -> None:
        self._views[view.id] = view
        self._views.move_to_end(view.id)
        self._models.pop(view.id, None)
        while len(self._views) > self.size:
            gone, _ = self._views.popitem(last=False)
            self._models.pop(gone, None)

    def drop(self, id: str) -> None:
        self._views.pop(id, None)
        self._models.pop(id, None)

    def model(self, view: View, kind: type[S]) -> S:
        """`view`'s data as a `kind` (a contract model callers share and never change),
        validated once while this view is the one held."""
        held = self._models.get(view.id)
        if isinstance(held, kind) and self._views.get(view.id) is view:
            return held
        model = kind.model_validate(view.data)
        if self._views.get(view.id) is view:
            self._models[view.id] = model
        return model


class Kept(IntEnum):
    """What `ReadModel.keep` did; true when the snapshot was newer than the view stored."""

    stale = 0  # not newer: nothing written (unless a pending mark)
    newer = 1  # the view replaced
    created = 2  # the view created: it did not exist


@dataclass
class ReadModel:
    enterprises: Aggregates[View]
    projects: Aggregates[View]
    offers: Aggregates[View]
    _memory: dict[str, Views] = field(default_factory=dict)

    def _views(self, views: Aggregates[View]) -> Views:
        return self._memory.setdefault(views.collection, Views())

    async def _get(self, views: Aggregates[View], id: str) -> View | None:
        """The view from memory, else from the store (then remembered)."""
        memory = self._views(views)
        view = memory.get(id)
        if view is None:
            view = await views.get(id)
            if view is not None:
                memory.put(view)
        return view

    async def keep(
        self, views: Aggregates[View], snapshot: BaseModel, removed: bool, pending: bool = False
    ) -> Kept:
        """Keep the newest snapshot; falsy if this one is not newer (a redelivery), `created`
        if the view did not exist (nothing that needs it, such as a match, is stored). `pending`:
        the engine has not applied it yet (it is loading, see `loading.py`): the view is marked,
        even if not newer (a redelivery may be all that is left of an effect a crash cut short),
        until the load's catch-up has applied and reconciled it. A newer snapshot kept without
        `pending` is applied by its own handler (or redelivered), so it clears the mark."""
        data = snapshot.model_dump(mode="json")
        memory = self._views(views)

        async def attempt() -> Kept:
            current = await self._get(views, data["id"])
            try:
                stored, newer = await _keep(views, current, data, removed, pending)
            except VersionConflict:
                memory.drop(data["id"])  # stale: the retry reads the store
                raise
            if stored is not None:
                memory.put(stored)
            return Kept.created if current is None else Kept.newer if newer else Kept.stale

        kept: Kept = await retry_on_conflict(attempt)
        return kept

    async def keep_new(
        self, views: Aggregates[View], snapshots: Sequence[BaseModel]
    ) -> tuple[set[str], set[str]]:
        """`keep` for a batch of snapshots not removed, in one insert for those this process
        does not hold (a snapshot whose view exists is then kept alone, by `keep`). Returns the
        ids kept (newer than stored) and, among them, those whose view was created by this call
        (nothing else of theirs can be stored yet: no match was made before its view)."""
        memory = self._views(views)
        datas = [s.model_dump(mode="json") for s in snapshots]
        unknown = [d for d in datas if memory.get(str(d["id"])) is None]
        rows = [_view(d, int(str(d.get("version", 0))), False, False) for d in unknown]
        existed = await views.add_many(rows) if rows else set()
        created = {r.id for r in rows if r.id not in existed}
        for row in rows:
            if row.id in created:
                memory.put(row)
        kept = set(created)
        for snapshot, data in zip(snapshots, datas, strict=True):
            if data["id"] not in created and await self.keep(views, snapshot, False):
                kept.add(str(data["id"]))
        return kept, created

    async def enterprise(self, id: str) -> EnterpriseRegistered | None:
        return await self._snapshot(self.enterprises, id, EnterpriseRegistered)

    async def project(self, id: str) -> ProjectSnapshot | None:
        return await self._snapshot(self.projects, id, ProjectSnapshot)

    async def offer(self, id: str) -> OfferSnapshot | None:
        return await self._snapshot(self.offers, id, OfferSnapshot)

    async def pair_views(
        self, pairs: Iterable[Proposal], known: Mapping[str, ProjectSnapshot] | None = None
    ) -> list[tuple[ProjectSnapshot, OfferSnapshot] | None]:
        """The project and offer views of each pair (None where either is gone), each view
        read once for the batch; `known`: project snapshots the caller holds (not read)."""
        pairs = list(pairs)
        known = known or {}
        # the views held in memory are taken at once and only the others read, together: a
        # task per view, each found in memory, was most of this for a wide offer event's pairs
        projects: dict[str, ProjectSnapshot | None] = {**known}
        offers: dict[str, OfferSnapshot | None] = {}
        project_ids = {p.project_id for p in pairs} - set(known)
        unread = self._held(self.projects, project_ids, ProjectSnapshot, projects)
        unread_offers = self._held(self.offers, {p.offer_id for p in pairs}, OfferSnapshot, offers)
        if unread or unread_offers:
            read_projects = asyncio.gather(*(self.project(i) for i in unread))
            read_offers = asyncio.gather(*(self.offer(i) for i in unread_offers))
            found_projects, found_offers = await asyncio.gather(read_projects, read_offers)
            projects.update(zip(unread, found_projects, strict=True))
            offers.update(zip(unread_offers, found_offers, strict=True))
        return [
            None
            if (project := projects.get(p.project_id)) is None
            or (offer := offers.get(p.offer_id)) is None
            else (project, offer)
            for p in pairs
        ]

    def _held(
        self, views: Aggregates[View], ids: set[str], kind: type[S], out: dict[str, S | None]
    ) -> list[str]:
        """The snapshots of these ids held in memory, into `out`; returns the others' ids."""
        memory = self._views(views)
        unread = []
        for id in sorted(ids):
            view = memory.get(id)
            if view is None:
                unread.append(id)
            else:
                out[id] = memory.model(view, kind)
        return unread

    async def _snapshot(self, views: Aggregates[View], id: str, kind: type[S]) -> S | None:
        view = await self._get(views, id)
        return None if view is None else self._views(views).model(view, kind)

    async def waiting_for(self, enterprise_id: str) -> list[ProjectSnapshot]:
        """Open projects of this enterprise (they may have arrived before it)."""
        views = await self.projects.every({"enterprise_id": enterprise_id, "removed": False}, 200)
        return [ProjectSnapshot.model_validate(v.data) for v in views]

    async def live(self) -> tuple[list[View], list[View], list[View]]:
        """Everything not removed, to load the engine on start (validated by `snapshots`)."""
        where = {"removed": False}
        return (
            await self.enterprises.every(where, LOAD_PAGE, LOAD_PAUSE),
            await self.projects.every(where, LOAD_PAGE, LOAD_PAUSE),
            await self.offers.every(where, LOAD_PAGE, LOAD_PAUSE),
        )

    async def pending(self) -> tuple[list[View], list[View], list[View]]:
        """The views marked pending (by id, in pages; found through their index)."""
        where = {"pending": True}
        return (
            await self.enterprises.every(where, LOAD_PAGE),
            await self.projects.every(where, LOAD_PAGE),
            await self.offers.every(where, LOAD_PAGE),
        )

    async def applied(self, views: Aggregates[View], id: str, source_version: int) -> None:
        """Clear the pending mark of this version of a view (a newer one stays marked)."""
        memory = self._views(views)

        async def attempt() -> None:
            current = await self._get(views, id)
            if current is None or not current.pending:
                return
            if current.source_version == source_version:
                try:
                    memory.put(await views.save(current.model_copy(update={"pending": False})))
                except VersionConflict:
                    memory.drop(id)
                    raise

        await retry_on_conflict(attempt)


async def _keep(
    views: Aggregates[View],
    current: View | None,
    data: dict[str, object],
    removed: bool,
    pending: bool,
) -> tuple[View | None, bool]:
    """One attempt of `ReadModel.keep` against `current` (as stored, or None): the view as
    stored after it (None: nothing written), and whether the snapshot was newer."""
    version = int(str(data.get("version", 0)))
    if current is None:
        return await views.add(_view(data, version, removed, pending)), True
    if version <= current.source_version:
        if pending and not current.pending:
            return await views.save(current.model_copy(update={"pending": True})), False
        return None, False
    update = {"data": data, "source_version": version, "removed": removed, "pending": pending}
    return await views.save(current.model_copy(update=update)), True


def _view(data: dict[str, object], version: int, removed: bool, pending: bool) -> View:
    enterprise_id = data.get("enterprise_id")
    return View(
        id=str(data["id"]),
        data=data,
        source_version=version,
        removed=removed,
        enterprise_id=None if enterprise_id is None else str(enterprise_id),
        pending=pending,
    )


def snapshots(
    enterprises: list[View], projects: list[View], offers: list[View]
) -> tuple[list[EnterpriseRegistered], list[ProjectSnapshot], list[OfferSnapshot]]:
    return (
        [EnterpriseRegistered.model_validate(v.data) for v in enterprises],
        [ProjectSnapshot.model_validate(v.data) for v in projects],
        [OfferSnapshot.model_validate(v.data) for v in offers],
    )
