"""Does each local server answer a real request? Kafka: a metadata request (cluster
description); FerretDB: a `ping`. Exit 0 when all asked-for servers answer.

    python deploy/local/healthcheck.py kafka mongo [--wait SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time

logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


async def kafka_ok(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await asyncio.wait_for(admin.start(), 5)
        cluster = await asyncio.wait_for(admin.describe_cluster(), 5)
        return bool(cluster.get("brokers"))
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def mongo_ok(url: str) -> bool:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        url, serverSelectionTimeoutMS=2000
    )
    try:
        reply = await client.admin.command("ping")
        return reply.get("ok") == 1
    except Exception:
        return False
    finally:
        await client.close()


async def check(which: list[str]) -> dict[str, bool]:
    kafka = os.environ.get(
        "G60_KAFKA_BOOTSTRAP", f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}"
    )
    mongo = os.environ.get(
        "G60_MONGO_URL", f"mongodb://127.0.0.1:{os.environ.get('FERRETDB_PORT', '27017')}"
    )
    probes = {"kafka": lambda: kafka_ok(kafka), "mongo": lambda: mongo_ok(mongo)}
    results = await asyncio.gather(*(probes[w]() for w in which))
    return dict(zip(which, results, strict=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("servers", nargs="+", choices=["kafka", "mongo"])
    parser.add_argument("--wait", type=float, default=0.0, help="keep trying this many seconds")
    args = parser.parse_args()
    deadline = time.monotonic() + args.wait
    while True:
        results = asyncio.run(check(args.servers))
        if all(results.values()) or time.monotonic() >= deadline:
            break
        print(".", end="", flush=True, file=sys.stderr)
        time.sleep(1.0)
    for name, ok in results.items():
        print(f"{name}: {'healthy' if ok else 'NOT answering'}")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
