"""Posts the demo catalogue through the public HTTP API, as a partner system would. Every create
carries an Idempotency-Key, so seeding again changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from allinone.catalogue import FUNDERS, enterprises


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any], key: str) -> Any:
    r = await client.post(path, json=body, headers={"Idempotency-Key": f"seed:{key}"})
    if r.status_code not in (200, 201):
        raise RuntimeError(f"seeding {path} failed: {r.status_code} {r.text}")
    return r.json()


async def seed(
    client: httpx.AsyncClient, progress: Callable[[str], None] = lambda _: None
) -> dict[str, int]:
    """`client` is authenticated as an operator. Returns how many of each were posted."""
    counts = {"funders": 0, "offers": 0, "enterprises": 0, "projects": 0}
    for entry in FUNDERS:
        funder = await _post(client, "/v1/funders", entry["funder"], entry["key"])
        counts["funders"] += 1
        for i, offer in enumerate(entry["offers"]):
            await _post(
                client, "/v1/offers", {**offer, "funder_id": funder["id"]}, f"{entry['key']}:{i}"
            )
            counts["offers"] += 1
    progress(f"seeded {counts['funders']} funders with {counts['offers']} offers")
    for entry in enterprises():
        ent = await _post(client, "/v1/enterprises", entry["enterprise"], entry["key"])
        counts["enterprises"] += 1
        await _post(
            client,
            "/v1/projects",
            {**entry["project"], "enterprise_id": ent["id"]},
            entry["key"] + ":project",
        )
        counts["projects"] += 1
    progress(f"seeded {counts['enterprises']} enterprises with one financing need each")
    return counts
