"""Reconciliations left for later. A change that touches many projects (an offer entering or
leaving a hundred top ks) stores on the event path only what moved in or out of them
(`Proposals.apply`); the rest — ranks shifted by one, the breakdowns of a changed offer's
other pairs, the allocated pair beyond the top k, the pairs another offer pushed out of a top k
— is brought in line here, in the background, by the same full reconciliation, sweeping (every
stored proposed match the engine no longer proposes is retracted, unless accepted or allocated),
a batch of projects at a time with the event loop free between batches. A failed batch stays
due and is tried again after a pause.

What is due is memory only, so the change that left it is marked durably by its caller (the
offer's view kept `pending`, `handlers.py`) and the mark cleared here once nothing is due: a
crash before that leaves the mark, and the next start's catch-up (`loading.py`) reconciles
every project of that offer again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import Protocol

from g60_chassis.tasks import cancel

log = logging.getLogger(__name__)


class Reconcile(Protocol):
    def __call__(
        self, project_ids: Iterable[str], *, changed: Collection[str] | None, sweep: bool
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
        # key → what clears the durable mark of a change whose work is due here (the newest)
        self._marks: dict[str, Callable[[], Awaitable[None]]] = {}

    @property
    def due(self) -> int:
        return len(self._due)

    def marked(self, key: str) -> bool:
        return key in self._marks

    def mark(self, key: str, clear: Callable[[], Awaitable[None]]) -> None:
        """Run `clear` once nothing is due (it replaces an earlier one of the same key)."""
        self._marks[key] = clear

    def later(self, project_ids: Iterable[str], changed: Collection[str] | None) -> None:
        for pid in project_ids:
            before = self._due.get(pid, set())
            self._due[pid] = None if before is None or changed is None else before | set(changed)
        if self._due:
            self._idle.clear()
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._run(), name="match-settling")

    async def _run(self) -> None:
        while True:
            await self._settle()
            if not self._marks:
                break
            marks, self._marks = self._marks, {}
            for key, clear in marks.items():
                try:
                    await clear()
                except Exception:  # still marked: the next start redoes it, nothing is lost
                    log.exception("matching: clearing the settling mark of %s failed", key)
            # work that came while clearing is settled (and its marks cleared) in a new round
        self._idle.set()

    async def _settle(self) -> None:
        while self._due:
            ids = sorted(self._due)[: self.batch]
            taken = {pid: self._due.pop(pid) for pid in ids}
            changed: set[str] | None = set()
            for ids_changed in taken.values():
                changed = None if ids_changed is None or changed is None else changed | ids_changed
            try:
                await self.reconcile(ids, changed=changed, sweep=True)
            except Exception:
                log.exception("matching: reconciling %d projects failed; retried", len(ids))
                for pid, was in taken.items():  # due again, with what was due meanwhile
                    now = self._due.get(pid, set())
                    self._due[pid] = None if was is None or now is None else was | now
                await asyncio.sleep(self.retry_s)
                continue
            await asyncio.sleep(self.pause_s)

    async def settled(self) -> None:
        """Wait until nothing is due (tests and benchmarks)."""
        await self._idle.wait()

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
