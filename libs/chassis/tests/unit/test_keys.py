"""The key lifecycle over `/v1/keys`: list without secrets, revoke (at once on the service that
revoked, within the key cache's second on the others) and expire, rotate with an overlap, keys
bound only to tenants that exist, and `/metrics` for operators only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from g60_chassis.auth import KeyStore
from g60_chassis.http import create_app
from g60_chassis.keys_api import keys_router
from g60_chassis.memory_store import MemoryDocumentStore
from g60_contracts.enums import Role

OP = "bootstrap-operator-key-for-tests-0123456789"


async def _exists(id: str) -> bool:
    return id == "ent_1"


def _client(keys: KeyStore) -> httpx.AsyncClient:
    app = create_app(
        title="t",
        description="t",
        routers=[keys_router({Role.enterprise: _exists})],
        keys=keys,
        checks={},
    )
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t",
        headers={"Authorization": f"Bearer {OP}"},
    )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


CLOCK = Clock()  # the services' monotonic clock, for the key cache


@pytest.fixture
async def two_services() -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    shared = MemoryDocumentStore()  # the platform's one key store
    a_keys = KeyStore(shared, OP, cache_s=1.0, clock=CLOCK)
    b_keys = KeyStore(shared, OP, cache_s=1.0, clock=CLOCK)
    async with _client(a_keys) as a, _client(b_keys) as b:
        yield a, b


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_revoked_key_stops_at_once_here_and_within_the_cache_bound_elsewhere(
    two_services,
) -> None:
    a, b = two_services
    issued = (await a.post("/v1/keys", json={"role": "partner", "note": "crm"})).json()
    for service in (a, b):  # works (a partner may not list keys: 403, not 401)
        assert (await service.get("/v1/keys", headers=_bearer(issued["key"]))).status_code == 403
    revoked = await a.post(f"/v1/keys/{issued['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert (await a.get("/v1/keys", headers=_bearer(issued["key"]))).status_code == 401
    assert (await b.get("/v1/keys", headers=_bearer(issued["key"]))).status_code == 403  # cached
    CLOCK.now += 1.0  # the cache's bound
    r = await b.get("/v1/keys", headers=_bearer(issued["key"]))
    assert r.status_code == 401, r.text


async def test_without_the_cache_a_revocation_holds_at_once_everywhere() -> None:
    shared = MemoryDocumentStore()
    a_keys, b_keys = KeyStore(shared, OP, cache_s=0), KeyStore(shared, OP, cache_s=0)
    async with _client(a_keys) as a, _client(b_keys) as b:
        issued = (await a.post("/v1/keys", json={"role": "partner"})).json()
        assert (await b.get("/v1/keys", headers=_bearer(issued["key"]))).status_code == 403
        await a.post(f"/v1/keys/{issued['id']}/revoke")
        assert (await b.get("/v1/keys", headers=_bearer(issued["key"]))).status_code == 401


async def test_keys_are_listed_without_their_secrets(two_services) -> None:
    a, _ = two_services
    issued = (await a.post("/v1/keys", json={"role": "enterprise", "tenant_id": "ent_1"})).json()
    listed = await a.get("/v1/keys", params={"tenant_id": "ent_1"})
    assert [k["id"] for k in listed.json()["items"]] == [issued["id"]]
    secret = issued["key"].split(".", 1)[1]
    assert secret not in listed.text and "hash" not in listed.text
    assert (await a.get(f"/v1/keys/{issued['id']}")).json()["role"] == "enterprise"
    assert (await a.get("/v1/keys/nope")).status_code == 404
    partner = (await a.post("/v1/keys", json={"role": "partner"})).json()["key"]
    assert (await a.get("/v1/keys", headers=_bearer(partner))).status_code == 403


async def test_an_expired_key_is_refused(two_services) -> None:
    a, _ = two_services
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    issued = (await a.post("/v1/keys", json={"role": "partner", "expires_at": past})).json()
    r = await a.get("/v1/keys", headers=_bearer(issued["key"]))
    assert r.status_code == 401 and "expired" in r.json()["detail"]


async def test_rotation_keeps_the_old_key_for_the_overlap_only(two_services) -> None:
    a, b = two_services
    old = (await a.post("/v1/keys", json={"role": "operator"})).json()
    new = await a.post(f"/v1/keys/{old['id']}/rotate", json={"overlap_s": 3600})
    assert new.status_code == 201 and new.json()["role"] == "operator"
    assert (await b.get("/v1/keys", headers=_bearer(old["key"]))).status_code == 200
    assert (await b.get("/v1/keys", headers=_bearer(new.json()["key"]))).status_code == 200
    info = (await a.get(f"/v1/keys/{old['id']}")).json()
    assert info["replaced_by"] == new.json()["id"] and info["expires_at"] is not None
    newer = await a.post(f"/v1/keys/{new.json()['id']}/rotate", json={"overlap_s": 0})
    CLOCK.now += 1.0  # b may hold the rotated key's record for the cache's second
    assert (await b.get("/v1/keys", headers=_bearer(new.json()["key"]))).status_code == 401
    assert (await b.get("/v1/keys", headers=_bearer(newer.json()["key"]))).status_code == 200


async def test_a_key_is_bound_only_to_a_tenant_that_exists_here(two_services) -> None:
    a, _ = two_services
    ghost = await a.post("/v1/keys", json={"role": "enterprise", "tenant_id": "ent_ghost"})
    assert (
        ghost.status_code == 422 and ghost.json()["invalid_params"][0]["name"] == "body.tenant_id"
    )
    elsewhere = await a.post("/v1/keys", json={"role": "funder", "tenant_id": "fun_1"})
    assert elsewhere.status_code == 422 and "funding" in elsewhere.json()["detail"]
    ok = await a.post("/v1/keys", json={"role": "enterprise", "tenant_id": "ent_1"})
    assert ok.status_code == 201


async def test_metrics_are_for_operators_only(two_services) -> None:
    a, _ = two_services
    assert (await a.get("/metrics", headers={"Authorization": ""})).status_code == 401
    partner = (await a.post("/v1/keys", json={"role": "partner"})).json()["key"]
    assert (await a.get("/metrics", headers=_bearer(partner))).status_code == 403
    r = await a.get("/metrics")
    assert r.status_code == 200 and "g60_http_requests_total" in r.text
