"""Drop what one end-to-end run of bench-flow made on the shared infra: its databases (one per
service, `G60_MONGO_DB_PREFIX`) and its topics (and their dead-letter topics). Runs piled up
otherwise: every run leaves three databases in FerretDB and half a dozen topics in Kafka."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

TIMEOUT_S = 60.0  # a hung FerretDB (its pool deadlock) must not hang the bench with it


async def drop_run(env: Mapping[str, str]) -> None:
    """Best effort and bounded: a bench that measured must not fail, or hang, on its cleanup."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(TIMEOUT_S):
            await _drop(env)


async def _drop(env: Mapping[str, str]) -> None:
    prefix = env.get("G60_MONGO_DB_PREFIX", "bench-run-without-a-prefix") + "_"
    url = env.get("G60_MONGO_URL", "mongodb://127.0.0.1:27017")
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        url, serverSelectionTimeoutMS=5000, socketTimeoutMS=20000
    )
    with contextlib.suppress(Exception):
        for name in await client.list_database_names():
            if name.startswith(prefix):
                await client.drop_database(name)
    with contextlib.suppress(Exception):
        await client.close()
    ours = tuple(v for k, v in env.items() if k.startswith("G60_TOPIC_") and v.startswith("bench."))
    admin = AIOKafkaAdminClient(bootstrap_servers=env.get("G60_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    with contextlib.suppress(Exception):
        await admin.start()
        topics = [t for t in await admin.list_topics() if t.startswith(ours)]
        if topics:
            await admin.delete_topics(topics)
    with contextlib.suppress(Exception):
        await admin.close()
