"""Inbound events: every platform topic → the fan-out use case."""

from __future__ import annotations

from collections.abc import Sequence

from g60_chassis.bus import BatchHandler, Handler
from g60_chassis.envelope import Envelope
from subscriptions.adapters.events import incoming
from subscriptions.service.fanout import FanOut


def platform_events(fanout: FanOut) -> Handler:
    async def handle(event: Envelope) -> None:
        translated = incoming(event)
        if translated is not None:
            await fanout.on_event(translated)

    return handle


def platform_batches(fanout: FanOut) -> BatchHandler:
    """A consumed batch at once (the bus falls back to `platform_events` one by one if it
    raises; the fan-out is idempotent)."""

    async def handle(events: Sequence[Envelope]) -> None:
        translated = [t for t in (incoming(e) for e in events) if t is not None]
        if translated:
            await fanout.on_events(translated)

    return handle
