"""Every service's OpenAPI lists what the chassis itself answers (issue 10, item 8: 400 on an
undecodable body, 401/403 on /v1/keys and the 200 of a repeated create were undocumented)."""

from __future__ import annotations

import pytest

import funding.entrypoints.app
import matching.entrypoints.app
import projects.entrypoints.app
from g60_chassis.settings import PlatformSettings

SETTINGS = PlatformSettings(store="memory", bus="memory")


@pytest.mark.parametrize(
    "module", [projects.entrypoints.app, funding.entrypoints.app, matching.entrypoints.app]
)
def test_every_operation_documents_the_chassis_responses(module) -> None:
    doc = module.create(SETTINGS).openapi()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            assert {"429", "500"} <= codes, (method, path)
            if path.startswith("/v1/") or path == "/metrics":
                assert {"401", "403", "422"} <= codes, (method, path)
            if "requestBody" in op:
                assert {"400", "413"} <= codes, (method, path)
            for code, spec in op["responses"].items():
                if code[0] in "45":
                    assert list(spec["content"]) == ["application/problem+json"], (path, code)


def test_a_repeated_create_is_documented_as_200() -> None:
    doc = projects.entrypoints.app.create(SETTINGS).openapi()
    for path in ("/v1/enterprises", "/v1/projects"):
        responses = doc["paths"][path]["post"]["responses"]
        assert {"200", "201"} <= set(responses)
        assert responses["200"]["content"] == responses["201"]["content"]
    keys = doc["paths"]["/v1/keys"]
    assert {"401", "403"} <= set(keys["post"]["responses"]) & set(keys["get"]["responses"])
