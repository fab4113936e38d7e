"""The sender's connections against a real loopback server: reused one request after the
other, one per concurrent request, at most `keepalive_per_origin` kept idle."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx

from subscriptions.adapters.connections import Connections
from subscriptions.adapters.guard import GuardedBackend
from subscriptions.adapters.sender import HttpSender
from subscriptions.service.ports import WebhookRequest
from tests.webhook_stub import StubPartner

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Counting(GuardedBackend):
    connects = 0

    async def connect_tcp(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.connects += 1
        return await super().connect_tcp(*args, **kwargs)


async def test_connections_are_kept_per_origin_and_reused() -> None:
    stub = StubPartner()
    await stub.start()
    backend = Counting(allow_loopback=True)
    sender = HttpSender(backend)
    sender.connections = Connections(backend, httpx.create_ssl_context(), keepalive_per_origin=3)
    request = WebhookRequest(stub.url, "msg_1", datetime.now(UTC), "{}", [SECRET])
    origin = (b"http", b"127.0.0.1", stub.port)
    try:
        for _ in range(3):
            assert (await sender.send(request)).ok
        assert (backend.connects, sender.connections.idle(origin)) == (1, 1)  # one, reused
        results = await asyncio.gather(*(sender.send(request) for _ in range(5)))
        assert all(r.ok for r in results)
        assert backend.connects == 5  # the kept one and four new ones
        assert sender.connections.idle(origin) == 3  # three of them kept
    finally:
        await sender.close()
        await stub.stop()
    assert len(stub.received) == 8
