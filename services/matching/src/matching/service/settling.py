"""Reconciliations left for later. A change that touches many projects (an offer entering or
leaving a hundred top ks) stores on the event path only what moved in or out of them
(`Proposals.apply`); the rest — ranks shifted by one, the breakdowns of a changed offer's
other pairs, the allocated pair beyond the top k — is brought in line here, in the background,
by the same full reconciliation, a batch of projects at a time with the event loop free between
batches. A failed batch stays due and is tried again after a pause."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Collection, Iterable
from typing import Protocol

from g60_chassis.tasks import cancel

log = logging.getLogger(__name__)


class Reconcile(Protocol):
    def __call__(
        self, project_ids: Iterable[str], *, changed: Collection[str] | None
    ) -> Awaitable[None]: ...


class Settling:
    def __init__(
        self, reconcile: Reconcile, batch: int = 32, pause_s: float = 0.002, retry_s: float = 1.0
    ) -> None:
        self.reconcile, self.batch, self.pause_s, self.retry_s = reconcile, batch, pause_s, retry_s
        # project → the ids of the projects and offers whose data changed (None: any may have)
        self._due: dict[str, set[str] | None] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    @property
    def due(self) -> int:
        return len(self._due)

    def later(self, project_ids: Iterable[str], changed: Collection[str] | None) -> None:
        for pid in project_ids:
            before = self._due.get(pid, set())
            self._due[pid] = None if before is None or changed is None else before | set(changed)
        if self._due:
            self._idle.clear()
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._run(), name="match-settling")

    async def _run(self) -> None:
        while self._due:
            ids = sorted(self._due)[: self.batch]
            taken = {pid: self._due.pop(pid) for pid in ids}
            changed: set[str] | None = set()
            for ids_changed in taken.values():
                changed = None if ids_changed is None or changed is None else changed | ids_changed
            try:
                await self.reconcile(ids, changed=changed)
            except Exception:
                log.exception("matching: reconciling %d projects failed; retried", len(ids))
                for pid, was in taken.items():  # due again, with what was due meanwhile
                    now = self._due.get(pid, set())
                    self._due[pid] = None if was is None or now is None else was | now
                await asyncio.sleep(self.retry_s)
                continue
            await asyncio.sleep(self.pause_s)
        self._idle.set()

    async def settled(self) -> None:
        """Wait until nothing is due (tests and benchmarks)."""
        await self._idle.wait()

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
