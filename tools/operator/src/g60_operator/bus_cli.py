"""`g60 topics` and `g60 dlq-list|dlq-replay|dlq-purge`: on Kafka from the broker itself
(`kafka_ops.py`), on the embedded platform from its in-process bus (`/v1/bus`)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from rich.table import Table

from g60_chassis import dlq
from g60_chassis.settings import PlatformSettings
from g60_contracts.bus import BusOut
from g60_operator import kafka_ops
from g60_operator.client import OperatorError, check, client
from g60_operator.common import Key, TopicArg, Url, app, out, target


def _kafka() -> str | None:
    """The broker of the distributed shape; None on the embedded platform's in-process bus,
    which the platform itself reports (`/v1/bus`)."""
    settings = PlatformSettings()
    return settings.kafka_bootstrap if settings.bus == "kafka" else None


def _embedded(url: str | None, key: str | None, method: str, path: str, topic: str = "") -> Any:
    where = target(url, key)

    async def go() -> Any:
        async with client(where) as c:
            params = {"topic": topic} if topic else None
            body = check(await c.request(method, path, params=params))
            if path == "/v1/bus" and body.get("kind") != "memory":
                raise OperatorError(
                    f"the platform at {where.url} runs on Kafka: set G60_BUS=kafka and "
                    "G60_KAFKA_BOOTSTRAP to read the broker",
                    OperatorError.USAGE,
                )
            return body

    return asyncio.run(go())


@app.command()
def topics(
    prefix: Annotated[str, typer.Option(help="only topics starting with this")] = "",
    url: Url = None,
    key: Key = None,
) -> None:
    """Topics with partitions, end offsets and size, each consumer group's lag, DLQ sizes."""
    bootstrap = _kafka()
    if bootstrap is None:
        bus = BusOut.model_validate(_embedded(url, key, "GET", "/v1/bus"))
        t = Table(title="In-process bus (embedded platform)", title_justify="left")
        for name in ("topic", "published", "dead letters"):
            t.add_column(name, justify="left" if name == "topic" else "right")
        shown = [b for b in bus.topics if b.name.startswith(prefix)]
        for b in shown:
            t.add_row(b.name, str(b.published), str(b.dead_letters))
        out.print(t)
        dead = sum(b.dead_letters for b in shown)
        out.print(f"{len(shown)} topics; {dead} dead letter(s) held; no lag: delivery is inline")
        return
    infos = asyncio.run(kafka_ops.topics(bootstrap, prefix))
    t = Table(title="Kafka topics", title_justify="left")
    for name in ("topic", "partitions", "end offsets", "held", "consumer group lag"):
        t.add_column(name, justify="left" if name in ("topic", "consumer group lag") else "right")
    for i in infos:
        ends = " ".join(str(i.end_offsets[p]) for p in sorted(i.end_offsets))
        lag = ", ".join(f"{g}: {n}" for g, n in sorted(i.lag.items())) or "-"
        style = "red" if i.name.endswith(kafka_ops.DLQ) and i.size else None
        t.add_row(i.name, str(i.partitions), ends, str(i.size), lag, style=style)
    out.print(t)
    dead = sum(i.size for i in infos if i.name.endswith(kafka_ops.DLQ))
    out.print(f"{len(infos)} topics; {dead} dead letter(s) held")


@app.command("dlq-list")
def dlq_list(
    topic: TopicArg,
    limit: Annotated[int, typer.Option(min=1, help="list at most this many")] = 1000,
    url: Url = None,
    key: Key = None,
) -> None:
    """The dead letters of TOPIC: where they came from, their type, key and error."""
    bootstrap = _kafka()
    rows: list[tuple[str, str, str, str, str, str]]
    if bootstrap is None:
        found = _embedded(url, key, "GET", "/v1/bus/dead-letters", topic)
        rows = [
            ("-", str(d["position"]), d["type"], d["key"], d["attempts"], d["error"])
            for d in found[:limit]
        ]
    else:
        letters = asyncio.run(kafka_ops.dead_letters(bootstrap, topic, limit))
        rows = [
            (str(d.partition), str(d.offset), d.type, d.key, d.attempts, d.error) for d in letters
        ]
    t = Table(title=f"{kafka_ops.dlq_of(topic)}", title_justify="left")
    for name in ("partition", "offset", "type", "key", "attempts", "error"):
        t.add_column(name, overflow="fold")
    for row in rows:
        t.add_row(*row[:5], row[5][:160])
    out.print(t)
    out.print(f"{len(rows)} dead letter(s)")


@app.command("dlq-replay")
def dlq_replay(
    topic: TopicArg,
    limit: Annotated[int | None, typer.Option(help="replay at most this many (Kafka)")] = None,
    url: Url = None,
    key: Key = None,
) -> None:
    """Send the dead letters of TOPIC back onto it (resumes where an interrupted one stopped)."""
    bootstrap = _kafka()
    if bootstrap is None:
        n = _embedded(url, key, "POST", "/v1/bus/dead-letters/replay", topic)["count"]
    else:
        n = asyncio.run(dlq.replay(bootstrap, topic, limit))
    out.print(f"{n} dead letter(s) replayed")


@app.command("dlq-purge")
def dlq_purge(
    topic: TopicArg,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
    url: Url = None,
    key: Key = None,
) -> None:
    """Delete the dead letters of TOPIC for good."""
    bootstrap = _kafka()
    if not yes and not typer.confirm(f"delete every dead letter of {kafka_ops.dlq_of(topic)}?"):
        raise OperatorError("nothing deleted", OperatorError.USAGE)
    if bootstrap is None:
        n = _embedded(url, key, "DELETE", "/v1/bus/dead-letters", topic)["count"]
    else:
        n = asyncio.run(kafka_ops.purge(bootstrap, topic))
    out.print(f"{n} dead letter(s) deleted from {kafka_ops.dlq_of(topic)}")
