"""Inbound events: every platform topic → the fan-out use case."""

from __future__ import annotations

from g60_chassis.bus import Handler
from g60_chassis.envelope import Envelope
from subscriptions.adapters.events import incoming
from subscriptions.service.fanout import FanOut


def platform_events(fanout: FanOut) -> Handler:
    async def handle(event: Envelope) -> None:
        translated = incoming(event)
        if translated is not None:
            await fanout.on_event(translated)

    return handle
