"""A stub partner for the webhook tests and the benchmark: a real HTTP server on loopback
(uvicorn, a raw ASGI app so it costs little per request) that records every POST it receives
and answers with a status the test sets. `stop()` then `start()` again on the same port is a
partner that was down for a while."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from tests.polling import eventually


@dataclass
class Received:
    id: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() at receipt


@dataclass
class StubPartner:
    status: int = 200
    retry_after: str | None = None
    location: str | None = None  # with a 3xx status: where it redirects
    delay_s: float = 0.0  # a slow receiver
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def ids(self) -> list[str]:
        return [r.id for r in self.received]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.received.append(
            Received(headers.get("webhook-id", ""), headers, b"".join(chunks), time.time())
        )
        self.arrived.set()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        out = [(b"content-type", b"text/plain")]
        if self.retry_after is not None:
            out.append((b"retry-after", self.retry_after.encode()))
        if self.location is not None:
            out.append((b"location", self.location.encode()))
        await send({"type": "http.response.start", "status": self.status, "headers": out})
        await send({"type": "http.response.body", "body": b"ok"})

    async def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        server = self._server
        await eventually(lambda: server.started or self._task is None or self._task.done())
        if self._task.done():
            self._task.result()  # the server could not start: say why
        return self.url

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._server = self._task = None
