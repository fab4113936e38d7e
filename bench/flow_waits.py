"""Where a need's time goes inside the matcher, per benchmark step: read from its `/metrics`
before and after the step (`g60_chassis.kafka_consumer`, `loop_lag`, the allocation's
counters) and split into
  * wait: a project event's record timestamp -> the start of the consumed batch that handles
    it (the broker's fetch wait, the poll, the batches handled before it);
  * handling: the batch's start -> the end of the event's chunk (engine, store writes);
  * relay: a batch of new matches from its insert call's start to the bus (its writes, then
    the outbox relay's wait: `g60_outbox_batch_age_seconds`);
  * loop lag: how late the event loop ran what was due (long synchronous sections);
  * allocation: runs in the step and their seconds by phase (snapshot on the loop, the
    allocation in its worker, the flags' writes beside the event path)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Hist = dict[str, float]  # "sum", "count", and each bucket's bound as text -> cumulative count
Sample = dict[str, Hist]  # "wait projects" / "lag" / "allocation" -> figures


async def sample(c: httpx.AsyncClient, url: str, topic: str) -> Sample:
    try:
        r = await c.get(url + "/metrics")
        r.raise_for_status()
    except httpx.HTTPError:
        return {}
    names = {
        "g60_consume_wait_seconds": "wait",
        "g60_consume_handled_seconds": "handled",
        "g60_consume_batch_seconds": "batch",
        "g60_loop_lag_seconds": "lag",
    }
    out: Sample = {"allocation": {}}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            base = s.name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
            if base in names and s.labels.get("topic", topic) == topic:
                h = out.setdefault(names[base], {})
                key = s.labels["le"] if s.name.endswith("_bucket") else s.name.rsplit("_", 1)[1]
                h[key] = s.value
            elif s.name == "g60_allocation_runs_total":
                out["allocation"]["runs"] = s.value
            elif s.name == "g60_allocation_seconds_total":
                out["allocation"][s.labels["phase"]] = s.value
            elif base == "g60_gc_seconds" and s.labels.get("generation") == "2":
                h = out.setdefault("gc2", {})
                key = s.labels["le"] if s.name.endswith("_bucket") else s.name.rsplit("_", 1)[1]
                h[key] = s.value
            elif base == "g60_outbox_batch_age_seconds" and s.labels.get("collection") == "matches":
                h = out.setdefault("relay", {})
                key = s.labels["le"] if s.name.endswith("_bucket") else s.name.rsplit("_", 1)[1]
                h[key] = s.value
            elif s.name == "g60_background_yield_seconds_total":
                out["allocation"]["yielded"] = s.value
    return out


async def allocation_pending(c: httpx.AsyncClient, url: str) -> bool:
    """The matcher's `g60_allocation_pending` (False when it cannot be read)."""
    try:
        r = await c.get(url + "/metrics")
        r.raise_for_status()
    except httpx.HTTPError:
        return False
    for family in text_string_to_metric_families(r.text):
        if family.name == "g60_allocation_pending":
            return any(s.value > 0 for s in family.samples)
    return False


def diff(before: Sample, after: Sample) -> Sample:
    return {
        k: {q: v - before.get(k, {}).get(q, 0.0) for q, v in h.items()} for k, h in after.items()
    }


def quantile(h: Hist, q: float) -> float:
    """The upper bound of the bucket holding the q-quantile (inf past the last bound)."""
    total = h.get("count", 0.0)
    bounds = sorted((float(k), v) for k, v in h.items() if k not in ("sum", "count"))
    for bound, cumulative in bounds:
        if total and cumulative >= q * total:
            return bound
    return float("nan")


def _ms(x: float) -> str:
    if x != x:  # no samples (a service without these figures)
        return "n/a"
    return f"{x * 1000:.0f}" if x != float("inf") else ">10000"


def line(rate: float, d: Sample, step_s: float) -> str:
    def stat(key: str) -> str:
        h = d.get(key, {})
        n = h.get("count", 0.0)
        mean = h.get("sum", 0.0) / n if n else float("nan")
        return f"{_ms(mean)}/{_ms(quantile(h, 0.99))}"

    batches = d.get("batch", {}).get("count", 0.0)
    alloc = d.get("allocation", {})
    phases = "/".join(
        f"{alloc.get(p, 0.0):.1f}" for p in ("snapshot", "allocate", "flags", "yielded")
    )
    return (
        f"  {rate:>6g}/s  wait {stat('wait'):>11}  handling {stat('handled'):>11}"
        f"  batches {batches:4.0f} of {stat('batch'):>9}  relay {stat('relay'):>9}"
        f"  loop lag {stat('lag'):>9}"
        f"  full gc {d.get('gc2', {}).get('count', 0.0):3.0f} of {stat('gc2'):>7}"
        f"  allocation {alloc.get('runs', 0.0):3.0f} runs, {phases} s"
        f" ({step_s:.0f} s)"
    )


HEADER = (
    "matcher, per project event (ms mean/p99; p99 = a histogram bucket's bound): wait = record\n"
    "  made -> its batch starts, handling = batch start -> its chunk handled; relay = a batch of\n"
    "  new matches from its insert call to the bus (the store's writes and the relay's wait);\n"
    "  loop lag = how late the event loop ran what was due; full gc = the collector's\n"
    "  generation-2 passes; allocation = runs and seconds snapshot/allocate/flags\n"
    "  (the flags' time includes the last figure: waiting for the event path to be idle)"
)
