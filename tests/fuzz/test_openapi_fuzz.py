"""Fuzzing of each service's HTTP API from its own OpenAPI document (schemathesis), in process
over ASGI on fakes: every operation, with valid and invalid data, as an operator, a tenant
(enterprise, funder), a partner, a stranger with a wrong key and no key at all.

Each response must be no server error, have a status code the operation documents, and a body
and content type that conform to what it documents. `make test` runs a short pass (a few
examples per operation); `make fuzz` a long one (G60_FUZZ_EXAMPLES, default there 500).
The all-in-one process is fuzzed too: its `/v1/keys` checks tenants of both services.
The subscriptions service resolves no generated host name (`_no_dns`)."""

from __future__ import annotations

import asyncio
import itertools
import os
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

import allinone.app
import funding.entrypoints.app
import projects.entrypoints.app
import subscriptions.entrypoints.app
from allinone.app import SERVICES
from g60_chassis.auth import KeyStore
from g60_chassis.bus import MemoryBus
from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.settings import PlatformSettings
from g60_contracts.enums import Role
from g60_contracts.events import EnterpriseRegistered, OfferSnapshot, ProjectSnapshot
from g60_contracts.funding import OFFER_EXAMPLE
from g60_contracts.projects import ENTERPRISE_EXAMPLE, PROJECT_EXAMPLE
from matching.domain.match import match_id

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("G60_FUZZ_EXAMPLES", "10"))
OPERATOR = "fuzz-operator-key-" + "x" * 32
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("G60_FUZZ_RANDOM") is None,  # CI: the same cases every run
    suppress_health_check=list(HealthCheck),
    database=None,
)


class Seeded:
    """One enterprise with a project, one funder with an offer, and (on the matching side)
    their match: half of the cases aim at these instead of random ids, so the use cases behind
    the 404s are reached too. Tenant keys are bound to them."""

    def __init__(self) -> None:
        now = datetime.now(UTC)
        self.enterprise = {
            **ENTERPRISE_EXAMPLE,
            "id": "ent_fuzz",
            "created_at": now,
            "version": 1,
        }
        self.project = {
            **PROJECT_EXAMPLE,
            "id": "prj_fuzz",
            "enterprise_id": "ent_fuzz",
            "status": "open",
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        self.funder = {"id": "fun_fuzz", "name": "Fuzz bank", "kind": "bank", "created_at": now}
        self.offer = {
            **OFFER_EXAMPLE,
            "id": "off_fuzz",
            "funder_id": "fun_fuzz",
            "funder_kind": "bank",
            "cities": [],
            "stages": [],
            "requirements": {},
            "status": "active",
            "remaining_cny": OFFER_EXAMPLE["capacity_cny"],
            "reserved_cny": 0,
            "committed_cny": 0,
            "deals_taken": 0,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        self.ids = {
            "/v1/enterprises/": "ent_fuzz",
            "/v1/projects/": "prj_fuzz",
            "/v1/offers/": "off_fuzz",
            "/v1/funders/": "fun_fuzz",
            "/v1/matches/": match_id("prj_fuzz", "off_fuzz"),
            "/v1/webhook-endpoints/": "whe_fuzz",
            "/v1/keys/": "",
        }

    async def into(self, module: Any, built: Any) -> None:
        svc = built.service
        if module is projects.entrypoints.app:
            await built.store.insert("enterprises", _doc(self.enterprise))
            await built.store.insert("projects", _doc(self.project))
        elif module is funding.entrypoints.app:
            await built.store.insert("funders", _doc(self.funder))
            await built.store.insert("offers", _doc(self.offer))
        elif module is subscriptions.entrypoints.app:
            await built.store.insert(
                "endpoints", _doc(self.endpoint(now=self.funder["created_at"]))
            )
        else:
            await svc.on_offer(OfferSnapshot.model_validate(_json(self.offer)))
            await svc.on_enterprise(EnterpriseRegistered.model_validate(_json(self.enterprise)))
            await svc.on_project(ProjectSnapshot.model_validate(_json(self.project)))

    @staticmethod
    def endpoint(now: datetime) -> dict[str, Any]:
        return {
            "id": "whe_fuzz",
            "owner_role": "enterprise",
            "owner_tenant": "ent_fuzz",
            "owner_key_id": "fuzz",
            "url": "https://partner.example/hook",
            "event_types": ["*"],
            "secrets": [{"value": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "created_at": now}],
            "created_at": now,
            "updated_at": now,
        }

    def aim(self, case: Any) -> None:
        """Point the case's `id` (and `offer_id`) at the seeded objects."""
        for prefix, id in self.ids.items():
            if case.path.startswith(prefix) and case.path_parameters and id:
                case.path_parameters["id"] = id
        if isinstance(case.query, dict) and "offer_id" in case.query:
            case.query["offer_id"] = "off_fuzz"
        if isinstance(case.headers, dict):  # a random If-Match stops nearly every change
            for name in [h for h in case.headers if h.lower() == "if-match"]:
                del case.headers[name]


def _json(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in obj.items()}


def _doc(obj: dict[str, Any]) -> dict[str, Any]:
    data = _json(obj)
    data["_id"] = data.pop("id")
    data.pop("version", None)
    return data


SEEDED = Seeded()


async def _no_dns(host: str, port: int) -> list[str]:
    """Generated host names are never looked up (the guard's rules are tested elsewhere)."""
    return ["93.184.216.34"]


def _extra(name: str) -> dict[str, Any]:
    return {"resolve": _no_dns} if name == "subscriptions" else {}


def _app(name: str) -> tuple[FastAPI, dict[str, str]]:
    """A service (or the all-in-one process) on fakes, seeded, with one key per role."""
    config = PlatformSettings(
        store="memory",
        bus="memory",
        bootstrap_operator_key=OPERATOR,
        environment="test",
        # limits on, but never reached: the wrong-key cases would otherwise block the address
        rate_key_burst=10**6,
        rate_address_burst=10**6,
        rate_auth_failures_burst=10**6,
    )
    keys, bus = KeyStore(MemoryDocumentStore(), OPERATOR), MemoryBus()
    names = list(SERVICES) if name == "allinone" else [name]
    parts = {
        n: SERVICES[n][0](config, store=MemoryDocumentStore(), bus=bus, keys=keys, **_extra(n))
        for n in names
    }

    async def prepare() -> dict[str, str]:
        for n, part in parts.items():
            await SEEDED.into(SERVICES[n][1], part)
        return {
            "operator": OPERATOR,
            "enterprise": await keys.create(Role.enterprise, "ent_fuzz"),
            "funder": await keys.create(Role.funder, "fun_fuzz"),
            "partner": await keys.create(Role.partner),
            "wrong": "g60_000000000000.not-a-secret",
            "none": "",
        }

    tokens = asyncio.run(prepare())
    if name == "allinone":
        return allinone.app.create(config, list(parts.values())), tokens
    return SERVICES[name][1].create(config, built=parts[name]), tokens


def _schema(name: str) -> tuple[Any, dict[str, str]]:
    app, tokens = _app(name)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    return schema, tokens


PROJECTS, PROJECT_TOKENS = _schema("projects")
FUNDING, FUNDING_TOKENS = _schema("funding")
MATCHING, MATCHING_TOKENS = _schema("matching")
SUBSCRIPTIONS, SUBSCRIPTIONS_TOKENS = _schema("subscriptions")
ALLINONE, ALLINONE_TOKENS = _schema("allinone")
# each case goes out as the next role in turn (schemathesis cannot mix `given` with examples)
ROLES = itertools.cycle(
    ["operator", "enterprise", "operator", "funder", "partner", "wrong", "none"]
)


AIM = itertools.cycle([True, False, True])


def _call(case: Any, tokens: dict[str, str]) -> None:
    if next(AIM):
        SEEDED.aim(case)
    token = tokens[next(ROLES)]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    case.call_and_validate(headers=headers, checks=CHECKS)


@PROJECTS.parametrize()
@SETTINGS
def test_projects_api(case: Any) -> None:
    _call(case, PROJECT_TOKENS)


@FUNDING.parametrize()
@SETTINGS
def test_funding_api(case: Any) -> None:
    _call(case, FUNDING_TOKENS)


@MATCHING.parametrize()
@SETTINGS
def test_matching_api(case: Any) -> None:
    _call(case, MATCHING_TOKENS)


@SUBSCRIPTIONS.parametrize()
@SETTINGS
def test_subscriptions_api(case: Any) -> None:
    _call(case, SUBSCRIPTIONS_TOKENS)


@ALLINONE.parametrize()
@SETTINGS
def test_allinone_api(case: Any) -> None:
    _call(case, ALLINONE_TOKENS)
