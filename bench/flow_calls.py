"""Store commands and broker requests per need, per service, during a benchmark step: read from
each service's `/metrics` (`g60_store_commands_total`, `g60_broker_requests_total`, counted by
`g60_chassis.counters`) before and after the step. Each FerretDB command costs FerretDB and
PostgreSQL about the same whatever it carries, and each broker request the broker: these
counts are what the flow's CPU per need follows."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families

# "store find rate_buckets" / "broker ProduceRequest" -> count; "lockwait matches" -> ms
Counts = dict[str, float]


async def _one(c: httpx.AsyncClient, url: str) -> Counts:
    try:
        r = await c.get(url + "/metrics")
        r.raise_for_status()
    except httpx.HTTPError:
        return {}
    out: Counts = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            if s.name == "g60_store_commands_total":
                out[f"store {s.labels['command']} {s.labels['collection']}"] = s.value
            elif s.name == "g60_store_lock_wait_seconds_total":
                out[f"lockwait {s.labels['collection']}"] = s.value * 1000  # ms
            elif s.name == "g60_broker_requests_total":
                out[f"broker {s.labels['request']}"] = s.value
    return out


async def sample(c: httpx.AsyncClient, urls: dict[str, str]) -> dict[str, Counts]:
    """Service -> its counts so far."""
    got = await asyncio.gather(*(_one(c, u) for u in urls.values()))
    return dict(zip(urls, got, strict=True))


def per_need(before: dict[str, Counts], after: dict[str, Counts], needs: int) -> dict[str, Counts]:
    """Service -> calls per need in between (only those that moved)."""
    out: dict[str, Counts] = {}
    for service, counts in after.items():
        was = before.get(service, {})
        moved = {k: (v - was.get(k, 0.0)) / needs for k, v in counts.items()}
        out[service] = {k: v for k, v in moved.items() if v > 0}
    return out


def table(rate: float, calls: dict[str, Counts]) -> list[str]:
    """Lines: per service, store commands and broker requests per need, and their detail."""
    lines = []
    for service, counts in calls.items():
        store = sum(v for k, v in counts.items() if k.startswith("store "))
        broker = sum(v for k, v in counts.items() if k.startswith("broker "))
        lines.append(f"  {rate:>5g}/s {service:<9} store {store:5.2f}  broker {broker:5.2f}")
        top = sorted(
            ((k, v) for k, v in counts.items() if not k.startswith("lockwait ")),
            key=lambda kv: -kv[1],
        )
        detail = ", ".join(f"{k.split(' ', 1)[1]} {v:.2f}" for k, v in top if v >= 0.05)
        lines.append(f"           {detail}")
        if waits := {k.split(" ", 1)[1]: v for k, v in counts.items() if k.startswith("lockwait ")}:
            shown = ", ".join(
                f"{k} {v:.1f}" for k, v in sorted(waits.items(), key=lambda kv: -kv[1])
            )
            lines.append(f"           document-lock waits, ms per need: {shown}")
    return lines
