"""The HTTP chassis' body limit and request metrics (a pure ASGI middleware): a body over the
limit is a 413 problem whether its length is announced or it comes chunked; a body within it
reaches the endpoint whole; requests are counted by their route."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import APIRouter, Request
from prometheus_client import REGISTRY

from g60_chassis.auth import KeyStore
from g60_chassis.http import create_app
from g60_chassis.memory_store import MemoryDocumentStore


def client(max_bytes: int) -> httpx.AsyncClient:
    api = APIRouter()

    @api.post("/echo/{name}")
    async def echo(name: str, request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    app = create_app(
        title="t",
        description="t",
        routers=[api],
        keys=KeyStore(MemoryDocumentStore()),
        checks={},
        max_body_bytes=max_bytes,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def chunks(n: int, size: int) -> AsyncIterator[bytes]:
    for _ in range(n):
        yield b"x" * size


def counted(route: str, status: str) -> float:
    labels = {"method": "POST", "route": route, "status": status}
    return REGISTRY.get_sample_value("g60_http_requests_total", labels) or 0.0


async def test_a_body_over_the_limit_is_a_413_problem_announced_or_chunked() -> None:
    async with client(100) as c:
        announced = await c.post("/echo/a", content=b"x" * 101)
        chunked = await c.post("/echo/a", content=chunks(3, 40))
    for r in (announced, chunked):
        assert r.status_code == 413
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == 413


async def test_a_body_within_the_limit_reaches_the_endpoint_whole_and_is_counted() -> None:
    before = counted("/echo/{name}", "200")
    async with client(100) as c:
        announced = await c.post("/echo/a", content=b"x" * 100)
        chunked = await c.post("/echo/b", content=chunks(2, 50))
    assert announced.json() == {"size": 100} and chunked.json() == {"size": 100}
    assert counted("/echo/{name}", "200") == before + 2
