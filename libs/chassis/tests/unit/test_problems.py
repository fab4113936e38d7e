"""Problem details of the HTTP chassis: an error's extra members never collide with RFC 9457's
own, a 500 tells nothing but a request id that is in the log, and odd headers are 4xx."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import APIRouter

from g60_chassis.auth import KeyStore
from g60_chassis.deps import IfMatch
from g60_chassis.errors import Conflict
from g60_chassis.http import create_app
from g60_chassis.memory_store import MemoryDocumentStore


def _app() -> httpx.AsyncClient:
    api = APIRouter()

    @api.post("/conflict")
    async def conflict() -> None:
        raise Conflict("a rejected match cannot be accepted", status="rejected")

    @api.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret connection string mongodb://admin:pw@db")

    @api.patch("/thing")
    async def thing(if_match: IfMatch) -> dict[str, int | None]:
        return {"version": if_match}

    app = create_app(
        title="t", description="t", routers=[api], keys=KeyStore(MemoryDocumentStore()), checks={}
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_an_error_with_a_status_member_is_a_409_that_keeps_it_apart() -> None:
    async with _app() as client:
        r = await client.post("/conflict")
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 409 and body["current_status"] == "rejected"


async def test_a_500_leaks_nothing_and_is_logged_with_its_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        async with _app() as client:
            r = await client.get("/boom")
    assert r.status_code == 500
    rid = r.json()["request_id"]
    assert rid and r.headers["x-request-id"] == rid
    assert "mongodb" not in r.text and "secret" not in r.text
    logged = [rec for rec in caplog.records if rid in rec.getMessage()]
    assert logged and logged[0].exc_info is not None


async def test_a_caller_request_id_is_echoed() -> None:
    async with _app() as client:
        r = await client.post("/conflict", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"


@pytest.mark.parametrize("tag", ['"' + "9" * 5000 + '"', 'W/"x"'])
async def test_an_if_match_that_is_no_etag_is_a_412(tag: str) -> None:
    async with _app() as client:
        r = await client.patch("/thing", headers={"If-Match": tag})
    assert r.status_code == 412, r.text
    assert len(r.text) < 1000
