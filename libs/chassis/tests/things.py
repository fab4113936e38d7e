"""The aggregate the chassis's tests store, and its events: a model with a counter.

One definition for the store, outbox and relay tests (each had its own copy)."""

from __future__ import annotations

from pydantic import BaseModel

from g60_chassis.envelope import Envelope


class Thing(BaseModel):
    id: str
    n: int = 0
    version: int = 0


def changed(t: Thing) -> list[tuple[str, Envelope]]:
    """One event on topic `t` saying the thing's counter."""
    return [("t", Envelope(type="thing.v1", source="/t", subject=t.id, data={"n": t.n}))]


def versioned(t: Thing) -> list[tuple[str, Envelope]]:
    """One event on topic `t` saying the thing's counter and the version it was saved at."""
    data = {"n": t.n, "v": t.version}
    return [("t", Envelope(type="thing.v1", source="/t", subject=t.id, data=data))]
