"""One deal end to end through the public API, printing each step: need posted, matches
explained, both sides accept, capacity reserved, deal closed. Used by `make demo` and by the
end-to-end test of the all-in-one app."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from allinone.catalogue import uscc

Say = Callable[[str], None]
# How long the demo waits for the matching engine to load: on a fresh machine its kernels are
# compiled first (tens of seconds on a busy 2-core machine), and only then does explain answer.
ENGINE_PATIENCE_S = 600.0


class DemoError(RuntimeError):
    pass


async def _ok(response: Awaitable[httpx.Response]) -> Any:
    r = await response
    if r.status_code >= 400:
        raise DemoError(f"{r.request.method} {r.request.url.path} → {r.status_code}: {r.text}")
    return r.json()


async def _maybe(response: Awaitable[httpx.Response]) -> Any:
    """Like _ok, but a 404 means "not there yet" (the matcher learns of a need by event)."""
    r = await response
    return None if r.status_code == 404 else await _ok(_done(r))


async def _done(r: httpx.Response) -> httpx.Response:
    return r


async def _when_ready(
    fetch: Callable[[], Awaitable[httpx.Response]], say: Say, patience: float
) -> Any:
    """Like _ok, but a 503 with Retry-After (the matching engine still loading, e.g. compiling
    its kernels on a fresh machine) is asked again after the wait it names."""
    deadline = asyncio.get_running_loop().time() + patience
    r = await fetch()
    while r.status_code == 503 and "retry-after" in r.headers:
        if asyncio.get_running_loop().time() > deadline:
            break
        say(f"   the matcher is not ready ({r.json().get('detail')}); asking again")
        await asyncio.sleep(float(r.headers["retry-after"]))
        r = await fetch()
    return await _ok(_done(r))


async def _until(
    fetch: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], what: str, timeout: float
) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await fetch()
        if done(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise DemoError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


def _breakdown(view: dict[str, Any]) -> str:
    terms = ", ".join(
        f"{t['criterion']} {'?' if t['score'] is None else format(t['score'], '.2f')}"
        for t in view["terms"]
    )
    return f"{view['total']:.2f} ({terms})"


async def walk_deal(
    client: httpx.AsyncClient, operator_key: str, say: Say = print, timeout: float = 120.0
) -> dict[str, Any]:
    """`timeout`: how long each step waits for the events it needs (an upper bound: a step goes
    on as soon as they arrived; on a fresh machine the matcher compiles its kernels first)."""
    run = uuid.uuid4().hex[:8]
    op = {"Authorization": f"Bearer {operator_key}"}

    def post(path: str, body: Any, headers: dict[str, str]) -> Awaitable[httpx.Response]:
        return client.post(path, json=body, headers=headers)

    say("1. the operator registers a funder with a 科创贷 product and an enterprise")
    funder = await _ok(
        post("/v1/funders", {"name": f"演示银行 demo bank {run}", "kind": "bank"}, op)
    )
    offer = await _ok(
        post(
            "/v1/offers",
            {
                "funder_id": funder["id"],
                "name": "科创贷 demo",
                "instrument": "credit_loan",
                "ticket_min_cny": 1_000_000,
                "ticket_max_cny": 30_000_000,
                "capacity_cny": 100_000_000,
                "max_deals": 5,
                "pricing": {"rate_bp": 360},
                "decision_days": 7,
                "requirements": {"qualifications_any": ["high_tech_enterprise"]},
            },
            op,
        )
    )
    enterprise = await _ok(
        post(
            "/v1/enterprises",
            {
                "name": f"松江微流量仪表 demo {run}",
                "uscc": uscc(random.Random(run), 0),
                "city": "shanghai",
                "district": "Songjiang",
                "sectors": ["instruments_meters"],
                "founded_on": "2016-04-01",
                "headcount": 120,
                "annual_revenue_cny": 60_000_000,
                "rd_intensity": 0.11,
                "debt_ratio": 0.3,
                "qualifications": [{"kind": "high_tech_enterprise", "expires_on": "2028-12-31"}],
                "collateral": ["ip"],
            },
            op,
        )
    )
    ent_key = (
        await _ok(post("/v1/keys", {"role": "enterprise", "tenant_id": enterprise["id"]}, op))
    )["key"]
    fun_key = (await _ok(post("/v1/keys", {"role": "funder", "tenant_id": funder["id"]}, op)))[
        "key"
    ]
    as_ent, as_fun = {"Authorization": f"Bearer {ent_key}"}, {"Authorization": f"Bearer {fun_key}"}
    say(f"   funder {funder['id']}, offer {offer['id']}, enterprise {enterprise['id']}")

    say("2. the enterprise posts its financing need: RMB 8 m, credit loan")
    project = await _ok(
        post(
            "/v1/projects",
            {
                "title": "Micro flow meter line",
                "amount_cny": 8_000_000,
                "instruments": ["credit_loan"],
                "stage": "series_a",
                "sector": "instruments_meters",
                "purpose": "second production line",
                "term_months": 36,
                "max_cost_bp": 500,
            },
            as_ent,
        )
    )

    say("3. the platform proposes ranked matches")
    matches = await _until(
        lambda: _maybe(client.get(f"/v1/projects/{project['id']}/matches", headers=as_ent)),
        lambda page: page is not None and any(m["offer_id"] == offer["id"] for m in page["items"]),
        "the proposal",
        timeout,
    )
    for m in matches["items"][:5]:
        say(
            f"   #{m['rank']} offer {m['offer_id']} score {m['score']:.2f}"
            f"{' (allocated)' if m['allocated'] else ''}"
        )
    match = next(m for m in matches["items"] if m["offer_id"] == offer["id"])

    say("4. why this pair")
    why = await _when_ready(
        lambda: client.get(
            f"/v1/projects/{project['id']}/explain",
            params={"offer_id": offer["id"]},
            headers=as_ent,
        ),
        say,
        ENGINE_PATIENCE_S,
    )
    say(f"   eligible: {why['eligible']}; enterprise's view {_breakdown(why['enterprise_view'])}")
    say(f"   funder's view {_breakdown(why['funder_view'])}")

    say("5. both sides accept")
    await _ok(client.post(f"/v1/matches/{match['id']}/accept", headers=as_ent))
    agreed = await _ok(client.post(f"/v1/matches/{match['id']}/accept", headers=as_fun))
    say(f"   match {agreed['id']} is {agreed['status']}")

    say("6. funding reserves the capacity")
    reserved = await _until(
        lambda: _ok(client.get(f"/v1/matches/{match['id']}", headers=as_fun)),
        lambda m: m["status"] in ("reserved", "rejected"),
        "the reservation",
        timeout,
    )
    if reserved["status"] != "reserved":
        raise DemoError(f"capacity was not reserved: {reserved['reason']}")
    say("   reserved")

    say("7. the funder closes the deal with the amount extended")
    closed = await _ok(post(f"/v1/matches/{match['id']}/close", {"amount_cny": 8_000_000}, as_fun))
    funded = await _until(
        lambda: _ok(client.get(f"/v1/projects/{project['id']}", headers=as_ent)),
        lambda p: p["status"] == "funded",
        "the project to be funded",
        timeout,
    )
    after = await _until(
        lambda: _ok(client.get(f"/v1/offers/{offer['id']}", headers=as_fun)),
        lambda o: o["committed_cny"] == 8_000_000,
        "the capacity to be committed",
        timeout,
    )
    say(
        f"   deal {closed['status']}; project {funded['status']} with RMB "
        f"{funded['funded_amount_cny']:,}; offer remaining RMB {after['remaining_cny']:,} "
        f"(was {offer['remaining_cny']:,})"
    )
    return {"project": funded, "offer": after, "match": closed}
