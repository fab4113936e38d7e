"""Group commit of single inserts: concurrent `Aggregates.add` calls on one collection are
written together, one batch document and one insert of all their documents (`batches.py`)
instead of those two writes each; the relay then publishes and deletes one batch for them all.

No timer: the first insert is written at once; those that arrive while a write is out wait for
it and go together in the next one (at most `max_group`). At low rates nothing waits; under
load a group grows with the wait, which is when a round trip saved matters. Every caller is
answered only after its own documents were written (or with the error of its group's write:
the group's batch is then left for the relay's scan, as a failed single insert's is).

Two inserts of one id (a retried request with one Idempotency-Key) never share a group: the
second waits for the next, so it sees the first's document as existing, as it would alone.
For collections whose only unique key is `_id`: a clash under another unique index fails
the whole group's write (`Aggregates(group_adds=False)` for those)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from g60_chassis.store import Doc

Row = tuple[Doc, list[Doc]]  # a document and its events
Write = Callable[[list[Row]], Awaitable[set[str]]]  # -> the ids that existed already


class GroupCommit:
    def __init__(self, write: Write, max_group: int = 64) -> None:
        self._write, self._max = write, max_group
        self._waiting: list[tuple[Row, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.writes = 0  # group writes made (for tests and benchmarks)

    async def add(self, row: Row) -> bool:
        """Write `row` with whatever else is waiting; True if its id existed already."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, done))
        if self._writer is None:
            # its own task: a caller that goes away (a dropped connection) stops no one else
            self._writer = asyncio.create_task(self._turns())
        return await done

    def _next_group(self) -> list[tuple[Row, asyncio.Future[bool]]]:
        group: list[tuple[Row, asyncio.Future[bool]]] = []
        rest: list[tuple[Row, asyncio.Future[bool]]] = []
        ids: set[str] = set()
        for waiting in self._waiting:
            id = waiting[0][0]["_id"]
            if len(group) < self._max and id not in ids:
                group.append(waiting)
                ids.add(id)
            else:
                rest.append(waiting)
        self._waiting = rest
        return group

    async def _turns(self) -> None:
        try:
            while self._waiting:
                group = self._next_group()
                try:
                    self.writes += 1
                    existed = await self._write([row for row, _ in group])
                except asyncio.CancelledError:  # shutting down: nobody is answered
                    for _, done in group + self._waiting:
                        done.cancel()
                    self._waiting = []
                    raise
                except Exception as exc:
                    for _, done in group:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for (doc, _), done in group:
                    if not done.done():
                        done.set_result(doc["_id"] in existed)
        finally:
            self._writer = None
