"""Does each local server answer a real request? Kafka: a metadata request (the admin client's
bootstrap plus a cluster description); FerretDB: a `ping`. Exit 0 when every server asked for
answers, 1 when one does not, 3 when a watched process died while waiting.

    python deploy/local/healthcheck.py kafka mongo [--wait SECONDS] [--pid kafka=123] [--quiet]

Addresses: G60_KAFKA_BOOTSTRAP / G60_MONGO_URL, else 127.0.0.1 with KAFKA_PORT / FERRETDB_PORT.
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


def kafka_bootstrap() -> str:
    port = os.environ.get("KAFKA_PORT", "9092")
    return os.environ.get("G60_KAFKA_BOOTSTRAP", f"127.0.0.1:{port}")


def mongo_url() -> str:
    port = os.environ.get("FERRETDB_PORT", "27017")
    return os.environ.get("G60_MONGO_URL", f"mongodb://127.0.0.1:{port}")


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
        url, serverSelectionTimeoutMS=2000, connectTimeoutMS=2000
    )
    try:
        reply = await client.admin.command("ping")
        return bool(reply.get("ok") == 1)
    except Exception:
        return False
    finally:
        await client.close()


async def check(which: list[str]) -> dict[str, bool]:
    probes = {"kafka": lambda: kafka_ok(kafka_bootstrap()), "mongo": lambda: mongo_ok(mongo_url())}
    results = await asyncio.gather(*(probes[w]() for w in which))
    return dict(zip(which, results, strict=True))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("servers", nargs="+", choices=["kafka", "mongo"])
    parser.add_argument("--wait", type=float, default=0.0, help="keep trying this many seconds")
    parser.add_argument(
        "--pid", action="append", default=[], help="NAME=PID: stop waiting if it exits"
    )
    parser.add_argument("--quiet", action="store_true", help="exit code only")
    args = parser.parse_args()
    pids = {name: int(pid) for name, _, pid in (p.partition("=") for p in args.pid)}
    start = time.monotonic()
    deadline = start + args.wait
    pending = list(dict.fromkeys(args.servers))
    healthy: dict[str, bool] = dict.fromkeys(pending, False)
    dots = False
    while pending:
        for name, ok in asyncio.run(check(pending)).items():
            if ok:
                healthy[name] = True
                pending.remove(name)
                if args.wait and not args.quiet:
                    end = "\n" if dots else ""
                    print(f"{end}{name}: answering after {time.monotonic() - start:.1f} s")
                    dots = False
        dead = [name for name, pid in pids.items() if name in pending and not pid_alive(pid)]
        if dead:
            print(f"\n{', '.join(dead)}: the process exited while starting", file=sys.stderr)
            return 3
        if not pending or time.monotonic() >= deadline:
            break
        if not args.quiet:
            print(".", end="", flush=True)
            dots = True
        time.sleep(1.0)
    if dots:
        print()
    if not args.quiet and not args.wait:
        for name, ok in healthy.items():
            print(f"{name}: {'healthy' if ok else 'NOT answering'}")
    if pending and not args.quiet and args.wait:
        print(f"not answering after {args.wait:.0f} s: {', '.join(pending)}", file=sys.stderr)
    return 0 if not pending else 1


if __name__ == "__main__":
    sys.exit(main())
