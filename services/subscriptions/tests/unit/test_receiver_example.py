"""The receiver example of docs/ (what a partner copies) against what this service sends: a
genuine delivery is accepted; a tampered body, an old timestamp and a wrong secret are all
rejected; during a rotation a receiver holding either secret accepts."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from subscriptions.adapters.sender import signed_headers
from subscriptions.domain.endpoint import new_secret
from subscriptions.service.deliveries import structured
from subscriptions.service.ports import WebhookRequest

EXAMPLE = Path(__file__).resolve().parents[4] / "docs" / "examples" / "webhook_receiver.py"


def _example() -> Any:
    spec = importlib.util.spec_from_file_location("webhook_receiver", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _post(secret: str, request: WebhookRequest, body: str | None = None) -> int:
    received: list[dict[str, Any]] = []
    app = _example().create_app(secret, received.append)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://partner") as client:
        r = await client.post(
            "/g60/webhooks",
            content=(request.body if body is None else body).encode(),
            headers=signed_headers(request),
        )
    if r.status_code == 204:
        assert received and received[0]["id"] == "evt_1"
    return r.status_code


def _request(secrets: list[str], at: datetime | None = None) -> WebhookRequest:
    at = at or datetime.now(UTC)
    body = structured("evt_1", "g60.match.agreed.v1", "/g60/matching", "mat_1", at, {"a": 1})
    return WebhookRequest("http://partner/g60/webhooks", "msg_1", at, body, secrets)


async def test_a_genuine_delivery_is_accepted() -> None:
    secret = new_secret()
    assert await _post(secret, _request([secret])) == 204


async def test_a_tampered_body_is_rejected() -> None:
    secret = new_secret()
    request = _request([secret])
    assert await _post(secret, request, request.body.replace('"a":1', '"a":2')) == 400


async def test_an_old_timestamp_is_rejected() -> None:
    secret = new_secret()
    old = datetime.now(UTC) - timedelta(minutes=10)
    assert await _post(secret, _request([secret], old)) == 400


async def test_a_wrong_secret_is_rejected() -> None:
    assert await _post(new_secret(), _request([new_secret()])) == 400


async def test_during_a_rotation_either_secret_verifies() -> None:
    old, new = new_secret(), new_secret()
    request = _request([new, old])
    assert await _post(old, request) == 204
    assert await _post(new, request) == 204
    assert await _post(old, _request([new])) == 400  # after the overlap the old one fails
