"""Prometheus counters of the calls a process makes to its infrastructure: store commands (by
command and collection) and broker requests (by request type), on `/metrics` beside the HTTP
figures. The flow benchmark reads them around each step to print store commands and broker
requests per need per service, which is what decides the cost of a need on FerretDB,
PostgreSQL and Kafka (each call costs about the same whatever it carries).

Store commands come from PyMongo's own command monitoring (a `CommandListener` given to the
client). aiokafka has no such hook: its connections' `send` (every request of every producer,
consumer and admin client passes there, once) is wrapped, once per process."""

from __future__ import annotations

import functools
import re
from typing import Any

from prometheus_client import Counter
from pymongo import monitoring

STORE_COMMANDS = Counter(
    "g60_store_commands_total", "Commands sent to the document store", ["command", "collection"]
)
STORE_LOCK_WAITS = Counter(
    "g60_store_lock_wait_seconds_total",
    "Time writes waited for this process's document locks (MongoDB store), by collection",
    ["collection"],
)
BROKER_REQUESTS = Counter("g60_broker_requests_total", "Requests sent to the broker", ["request"])
_VERSION = re.compile(r"_v\d+$")


class StoreCommands(monitoring.CommandListener):
    """Counts each command as it starts (a failed one counts too: it cost a round trip)."""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        if event.command_name == "getMore":
            target = event.command.get("collection")
        collection = target if isinstance(target, str) else "-"
        STORE_COMMANDS.labels(event.command_name, collection).inc()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


@functools.cache
def count_broker_requests() -> None:
    """Wrap aiokafka's connection `send` (idempotent: once per process)."""
    from aiokafka.conn import AIOKafkaConnection

    send = AIOKafkaConnection.send

    @functools.wraps(send)
    def counted(self: AIOKafkaConnection, request: Any, *args: Any, **kwargs: Any) -> Any:
        BROKER_REQUESTS.labels(_VERSION.sub("", type(request).__name__)).inc()
        return send(self, request, *args, **kwargs)

    AIOKafkaConnection.send = counted
