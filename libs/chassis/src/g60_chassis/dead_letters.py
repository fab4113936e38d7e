"""Where the in-process bus keeps its dead letters when the embedded platform runs on a store
that outlives the process (SQLite): a restart of `make run` still lists, replays and purges
what failed before it. On Kafka the dead-letter topics are that record."""

from __future__ import annotations

import base64

from g60_chassis.bus import DeadLetter
from g60_chassis.store import Doc, DocumentStore

COLLECTION = "dead_letters"
PAGE = 500


def _doc(letter: DeadLetter) -> Doc:
    return {
        "_id": letter.id,
        "topic": letter.topic,
        "key": letter.key,
        "value": base64.b64encode(letter.value).decode(),  # any bytes, JSON or not
        "headers": letter.headers,
    }


def _letter(doc: Doc) -> DeadLetter:
    return DeadLetter(
        topic=doc["topic"],
        key=doc["key"],
        value=base64.b64decode(doc["value"]),
        headers=dict(doc["headers"]),
        id=doc["_id"],
    )


class DeadLetterShelf:
    """The dead letters of one in-process bus, one document each, in id order (ids are
    time-ordered, so that is the order they failed in)."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store
        self._closed = False

    async def load(self) -> list[DeadLetter]:
        out: list[DeadLetter] = []
        after: str | None = None
        while page := await self._store.find(COLLECTION, after_id=after, limit=PAGE):
            out += [_letter(d) for d in page]
            after = page[-1]["_id"]
        return out

    async def put(self, letter: DeadLetter) -> None:
        await self._store.insert(COLLECTION, _doc(letter))

    async def drop(self, letters: list[DeadLetter]) -> None:
        if letters:
            await self._store.delete_many(COLLECTION, [d.id for d in letters])

    async def close(self) -> None:
        if not self._closed:  # the all-in-one process stops its one bus once per service
            self._closed = True
            await self._store.close()
