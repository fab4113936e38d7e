"""Waiting for the in-process platform to be quiet, shared by the all-in-one tests."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from allinone.app import Part
from matching.bootstrap import MatchingApp


async def settle(parts: Sequence[Part]) -> None:
    """The matching engine loaded, then every pending event relayed (the in-process bus
    delivers as it publishes). The engine may still be loading after start: its kernels,
    compiled on a cold numba cache (a fresh clone, or the domain's code changed), take longer
    than start waits, and the events consumed meanwhile are kept pending until it has loaded."""
    for part in parts:
        if isinstance(part, MatchingApp):
            await asyncio.wait_for(part.service.loaded.wait(), 300)
    for _ in range(3):
        for part in parts:
            await part.relay.drain()
