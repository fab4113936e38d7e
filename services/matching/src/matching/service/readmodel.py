"""The read model: the newest snapshot of every enterprise, project and offer the matching
service heard of, stored as it came (contract JSON) and read back as contract models."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from g60_chassis.aggregates import Aggregates, retry_on_conflict
from g60_contracts.events import EnterpriseRegistered, OfferSnapshot, ProjectSnapshot
from matching.service.ports import View

LOAD_PAGE = 2_000  # documents per read when the engine loads (~0.1 s of the event loop each)
LOAD_PAUSE = 0.02  # s between them: the API and the consumers run meanwhile (see `every`)


@dataclass
class ReadModel:
    enterprises: Aggregates[View]
    projects: Aggregates[View]
    offers: Aggregates[View]

    async def keep(
        self, views: Aggregates[View], snapshot: BaseModel, removed: bool, pending: bool = False
    ) -> bool:
        """Keep the newest snapshot; False if this one is not newer (a redelivery). `pending`:
        the engine has not applied it yet (it is loading, see `loading.py`): the view is marked,
        even if not newer (a redelivery may be all that is left of an effect a crash cut short),
        until the load's catch-up has applied and reconciled it. A newer snapshot kept without
        `pending` is applied by its own handler (or redelivered), so it clears the mark."""
        data = snapshot.model_dump(mode="json")
        version = int(data.get("version", 0))

        async def attempt() -> bool:
            current = await views.get(data["id"])
            if current is None:
                await views.add(
                    View(
                        id=data["id"],
                        data=data,
                        source_version=version,
                        removed=removed,
                        enterprise_id=data.get("enterprise_id"),
                        pending=pending,
                    )
                )
                return True
            if version <= current.source_version:
                if pending and not current.pending:
                    current.pending = True
                    await views.save(current)
                return False
            current.data, current.source_version, current.removed = data, version, removed
            current.pending = pending
            await views.save(current)
            return True

        kept: bool = await retry_on_conflict(attempt)
        return kept

    async def enterprise(self, id: str) -> EnterpriseRegistered | None:
        view = await self.enterprises.get(id)
        return None if view is None else EnterpriseRegistered.model_validate(view.data)

    async def project(self, id: str) -> ProjectSnapshot | None:
        view = await self.projects.get(id)
        return None if view is None else ProjectSnapshot.model_validate(view.data)

    async def offer(self, id: str) -> OfferSnapshot | None:
        view = await self.offers.get(id)
        return None if view is None else OfferSnapshot.model_validate(view.data)

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

    @staticmethod
    async def applied(views: Aggregates[View], id: str, source_version: int) -> None:
        """Clear the pending mark of this version of a view (a newer one stays marked)."""

        async def attempt() -> None:
            current = await views.get(id)
            if current is None or not current.pending:
                return
            if current.source_version == source_version:
                current.pending = False
                await views.save(current)

        await retry_on_conflict(attempt)


def snapshots(
    enterprises: list[View], projects: list[View], offers: list[View]
) -> tuple[list[EnterpriseRegistered], list[ProjectSnapshot], list[OfferSnapshot]]:
    return (
        [EnterpriseRegistered.model_validate(v.data) for v in enterprises],
        [ProjectSnapshot.model_validate(v.data) for v in projects],
        [OfferSnapshot.model_validate(v.data) for v in offers],
    )
