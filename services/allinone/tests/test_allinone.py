"""The embedded default: the whole platform in one process on SQLite files and the in-process
bus, walked through a deal as `make demo` does, seeded as `make run` does, and restarted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from allinone.__main__ import operator_key
from allinone.app import build_parts, create
from allinone.catalogue import FUNDERS, enterprises
from allinone.demo import _when_ready, walk_deal
from allinone.seed import seed
from g60_chassis.settings import PlatformSettings
from g60_contracts.enums import Role
from matching.bootstrap import MatchingApp
from services.allinone.tests.settling import settle

pytestmark = pytest.mark.integration  # real SQLite files


def settings(tmp: Path) -> PlatformSettings:
    return PlatformSettings(data_dir=tmp, bus="memory", store="sqlite", outbox_interval_s=0.1)


class Running:
    def __init__(self, tmp: Path) -> None:
        self.settings = settings(tmp)
        self.parts = build_parts(self.settings)
        self.app = create(self.settings, self.parts)

    async def __aenter__(self) -> tuple[httpx.AsyncClient, str]:
        self.lifespan = LifespanManager(self.app, startup_timeout=120, shutdown_timeout=120)
        await self.lifespan.__aenter__()
        key = await operator_key(self.parts[0].keys, self.settings.data_dir)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://allinone",
            headers={"Authorization": f"Bearer {key}"},
        )
        return self.client, key

    async def settle(self) -> None:
        await settle(self.parts)

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self.lifespan.__aexit__(*exc)


async def test_the_demo_deal_walks_end_to_end(tmp_path):
    async with Running(tmp_path) as (client, key):
        steps: list[str] = []
        result = await walk_deal(client, key, say=steps.append)
    assert result["match"]["status"] == "closed"
    assert result["project"]["status"] == "funded"
    assert result["offer"]["committed_cny"] == 8_000_000
    assert result["offer"]["remaining_cny"] == 100_000_000 - 8_000_000
    assert any(s.startswith("7.") for s in steps)


async def test_seeded_catalogue_survives_a_restart_and_is_not_seeded_twice(tmp_path):
    running = Running(tmp_path)
    async with running as (client, key):
        counts = await seed(client)
        await running.settle()
        projects = (await client.get("/v1/projects", params={"limit": 200})).json()["items"]
        with_matches = {}
        for p in projects:
            items = (await client.get(f"/v1/projects/{p['id']}/matches")).json()["items"]
            with_matches[p["id"]] = sorted(m["id"] for m in items)
    assert counts["projects"] == len(enterprises()) >= 30
    assert counts["offers"] == sum(len(f["offers"]) for f in FUNDERS)
    assert sum(1 for ids in with_matches.values() if ids) >= len(projects) // 2

    again_running = Running(tmp_path)
    async with again_running as (client, key2):
        assert key2 == key  # the operator key is kept
        await seed(client)  # idempotent: nothing new
        await again_running.settle()
        again = (await client.get("/v1/projects", params={"limit": 200})).json()["items"]
        assert sorted(p["id"] for p in again) == sorted(with_matches)
        for p in again:
            items = (await client.get(f"/v1/projects/{p['id']}/matches")).json()["items"]
            assert sorted(m["id"] for m in items) == with_matches[p["id"]]
        offers = (await client.get("/v1/offers", params={"limit": 200})).json()["items"]
        assert len(offers) == counts["offers"]


async def test_keys_are_role_bound(tmp_path):
    async with Running(tmp_path) as (client, _):
        r = await client.post("/v1/keys", json={"role": "enterprise"})
        assert r.status_code == 422 and r.json()["invalid_params"][0]["name"] == "body.tenant_id"
        partner = (await client.post("/v1/keys", json={"role": Role.partner.value})).json()["key"]
        r = await client.post(
            "/v1/keys", json={"role": "operator"}, headers={"Authorization": f"Bearer {partner}"}
        )
        assert r.status_code == 403


async def test_explain_while_the_engine_loads_is_a_503_with_retry_after_that_the_demo_waits_out(
    tmp_path,
):
    """On a fresh machine the engine compiles its kernels before it loads; `explain` answers
    503 with Retry-After meanwhile (a fresh clone's CI once failed the demo on it)."""
    running = Running(tmp_path)
    async with running as (client, _):
        await seed(client)
        await running.settle()
        matching = next(p for p in running.parts if isinstance(p, MatchingApp))
        project = (await client.get("/v1/projects", params={"limit": 1})).json()["items"][0]
        path = f"/v1/projects/{project['id']}/explain"
        matching.service.loaded.clear()  # as while the engine loads after a start
        r = await client.get(path)
        assert r.status_code == 503 and r.headers["Retry-After"] == "2"
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"].endswith("/engine-loading")

        said: list[str] = []
        asyncio.get_running_loop().call_later(1.0, matching.service.loaded.set)
        why = await _when_ready(lambda: client.get(path), said.append, 60)
    assert why["project_id"] == project["id"]
    assert said and "not ready" in said[0]
