"""Waiting in tests and benches for something to become true: poll until a deadline, never a
timing assertion (the machines that run them are shared and slow)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    check: Callable[[], T | Awaitable[T]], timeout: float = 120.0, interval: float = 0.1
) -> T:
    """Call `check` (sync or async) until it returns something truthy and return that; fail
    with the last value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        last = await result if inspect.isawaitable(result) else result
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s; last: {last!r} ({check})")
        await asyncio.sleep(interval)
