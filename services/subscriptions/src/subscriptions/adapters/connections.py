"""Keep-alive connections to partners, per origin: each connection lives in an httpcore pool
of its own (max one connection), and a request takes an idle one or opens a new one.

Why not one httpcore pool per origin: on every request httpcore's pool looks at every
connection it holds (is it idle, has it expired: a poll of its socket through anyio), so with
a lane's 8 requests in flight each request paid for 8; that scan was a quarter of the sender's
CPU (cProfile of `make bench-webhooks`). A pool of one connection still does all the rest
(connect through the guarded backend, keep-alive expiry, reconnect after a close, HTTP/1.1)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import OrderedDict
from collections.abc import AsyncIterator

import httpcore

Origin = tuple[bytes, bytes, int | None]  # scheme, host, port


class Connections:
    def __init__(
        self,
        backend: httpcore.AsyncNetworkBackend,
        ssl_context: ssl.SSLContext,
        *,
        max_connections: int = 200,
        keepalive_per_origin: int = 16,
        max_origins: int = 512,
        keepalive_expiry_s: float = 5.0,
    ) -> None:
        self.backend, self.ssl_context = backend, ssl_context
        self.keepalive_per_origin, self.max_origins = keepalive_per_origin, max_origins
        self.keepalive_expiry_s = keepalive_expiry_s
        self._slots = asyncio.Semaphore(max_connections)  # requests in flight, all origins
        self._idle: OrderedDict[Origin, list[httpcore.AsyncConnectionPool]] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    def _new(self) -> httpcore.AsyncConnectionPool:
        return httpcore.AsyncConnectionPool(
            ssl_context=self.ssl_context,
            max_connections=1,
            keepalive_expiry=self.keepalive_expiry_s,
            http1=True,
            http2=False,
            retries=0,
            network_backend=self.backend,
        )

    @contextlib.asynccontextmanager
    async def take(self, origin: Origin) -> AsyncIterator[httpcore.AsyncConnectionPool]:
        """A connection (in its pool of one) to `origin` for one request; back to the idle
        ones afterwards, or closed when the origin has enough idle ones."""
        async with self._slots:
            idle = self._idle.get(origin)
            pool = idle.pop() if idle else self._new()
            try:
                yield pool
            finally:
                idle = self._idle.setdefault(origin, [])
                self._idle.move_to_end(origin)
                if len(idle) < self.keepalive_per_origin:
                    idle.append(pool)
                else:
                    self._close([pool])
                while len(self._idle) > self.max_origins:  # the least recently used origin
                    self._close(self._idle.popitem(last=False)[1])

    def idle(self, origin: Origin) -> int:
        """Connections (pools of one) kept for `origin` and not in use."""
        return len(self._idle.get(origin, []))

    def _close(self, pools: list[httpcore.AsyncConnectionPool]) -> None:
        for pool in pools:
            task = asyncio.get_running_loop().create_task(pool.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        for pools in self._idle.values():
            for pool in pools:
                await pool.aclose()
        self._idle.clear()
        if self._closing:
            await asyncio.wait(self._closing)
