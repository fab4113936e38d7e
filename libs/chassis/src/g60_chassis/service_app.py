"""Turns one or more built services into one ASGI app with an ordered lifecycle: the bus starts
(consumers join their groups) once every service has subscribed; on shutdown the relays drain,
then the bus lets in-flight handlers finish (their offsets commit only after), then stores close.
The same function serves a service alone and the all-in-one process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from fastapi import FastAPI

from g60_chassis import collector
from g60_chassis.bus_api import bus_router
from g60_chassis.http import create_app
from g60_chassis.keys_api import keys_router
from g60_chassis.runtime import BuiltService, make_limiter

Part = BuiltService[Any]


def build_asgi(
    parts: Sequence[Part],
    *,
    title: str,
    description: str,
    asyncapi: Callable[[], dict[str, Any]] | None = None,
    on_started: Callable[[], Any] | None = None,
) -> FastAPI:
    keys, settings = parts[0].keys, parts[0].settings
    tenants = {role: check for p in parts for role, check in p.tenants.items()}
    buses = list({id(p.bus): p.bus for p in parts}.values())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for part in parts:
            await part.ensure_indexes()
            await part.relay.prepare()
        for part in parts:  # e.g. rebuild an in-memory read model before consuming
            await part.prepare()
        for b in buses:
            for part in parts:
                for topic in part.publishes:
                    b.declare(topic)
            await b.start()
        for part in parts:
            await part.start()
        if on_started is not None:
            result = on_started()
            if hasattr(result, "__await__"):
                await result
        collector.settle_if_serving(settings.gc_gen0_threshold)
        try:
            yield
        finally:
            for part in parts:
                await part.stop()
            for b in buses:
                await b.stop()
            for part in parts:
                await part.store.close()
            await keys.close()

    async def bus_ok() -> bool:
        return all([await b.ping() for b in buses])

    async def stores_ok() -> bool:
        return all([await p.store.ping() for p in parts])

    return create_app(
        title=title,
        description=description,
        routers=[keys_router(tenants), bus_router(buses), *(r for p in parts for r in p.routers)],
        keys=keys,
        checks={"broker": bus_ok, "store": stores_ok},
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
        limiter=make_limiter(settings, keys),
        extra_docs={"/asyncapi": asyncapi} if asyncapi else None,
    )
