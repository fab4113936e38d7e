"""The e2e harness: the three services as processes, and polling."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Platform:
    env: dict[str, str]
    ports: dict[str, int]
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self, service: str) -> None:
        log = open(self.logs / f"{service}.log", "ab")  # noqa: SIM115 - owned by the process
        self.procs[service] = subprocess.Popen(
            [sys.executable, "-m", service],
            env={**self.env, "G60_PORT": str(self.ports[service])},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        self.wait_ready(service)

    def wait_ready(self, service: str, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs[service]
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{service} exited: {(self.logs / f'{service}.log').read_text()[-3000:]}"
                )
            try:
                if httpx.get(self.url(service) + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{service} not ready after {timeout}s")

    def stop(self, service: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(service, None)
        if proc is None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def platform_env(prefix: str, data: Path) -> dict[str, str]:
    """The settings of a distributed platform whose topics, groups and databases are unique to
    this run (`prefix` names them)."""
    run = uuid.uuid4().hex[:8]
    return {
        **os.environ,
        "G60_BUS": "kafka",
        "G60_STORE": "mongo",
        "G60_KAFKA_BOOTSTRAP": os.environ.get("G60_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        "G60_MONGO_URL": os.environ.get("G60_MONGO_URL", "mongodb://127.0.0.1:27017"),
        "G60_MONGO_DB_PREFIX": f"{prefix}{run}",
        "G60_TOPIC_PROJECTS": f"{prefix}.{run}.projects",
        "G60_TOPIC_FUNDING": f"{prefix}.{run}.funding",
        "G60_TOPIC_MATCHES": f"{prefix}.{run}.matches",
        "G60_CONSUMER_GROUP_PREFIX": f"{prefix}-{run}",
        "G60_BOOTSTRAP_OPERATOR_KEY": f"operator-{run}-" + uuid.uuid4().hex,
        "G60_OUTBOX_INTERVAL_S": "0.2",
        "G60_DATA_DIR": str(data),
        "G60_INSTANCE_ID": f"{prefix}-{run}",
    }


@contextmanager
def running(
    env: dict[str, str], services: Sequence[str], base_port: int, logs: Path
) -> Iterator[Platform]:
    """These services as processes on consecutive ports from `base_port`, stopped after."""
    p = Platform(env, {s: base_port + i for i, s in enumerate(services)}, logs)
    try:
        for service in services:
            p.start(service)
        yield p
    finally:
        for service in list(p.procs):
            p.stop(service)
