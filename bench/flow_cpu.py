"""CPU time by component during a benchmark step, read from /proc (Linux): the three service
processes, and the infrastructure this checkout started (found by its INFRA_DIR in their
command lines): Kafka, FerretDB, PostgreSQL (the postmaster and its backends). On a shared
2-core machine this tells which process the flow waits for, beside the wall-clock split."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _ppid_and_cpu(pid: int) -> tuple[int, float]:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return -1, 0.0
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def components(services: dict[str, int], infra_dir: Path) -> dict[str, list[int]]:
    """Component → pids: the services as given; kafka, ferretdb, postgres by their command line."""
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    infra = str(infra_dir)
    found: dict[str, list[int]] = {name: [pid] for name, pid in services.items()}
    found.update(kafka=[], ferretdb=[], postgres=[])
    for pid in pids:
        cmd = _cmdline(pid)
        if infra not in cmd:
            continue
        if "ferretdb" in cmd and "--handler" in cmd:
            found["ferretdb"].append(pid)
        elif "kafka.Kafka" in cmd:
            found["kafka"].append(pid)
        elif f"{infra}/postgres" in cmd:
            found["postgres"].append(pid)
    masters = set(found["postgres"])
    found["postgres"] += [p for p in pids if _ppid_and_cpu(p)[0] in masters]
    return found


def sample(services: dict[str, int]) -> dict[str, dict[int, float]]:
    """CPU seconds used so far, by component and pid."""
    found = components(services, infra_dir())
    return {name: {p: _ppid_and_cpu(p)[1] for p in pids} for name, pids in found.items()}


def used(
    before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]
) -> dict[str, float]:
    """CPU seconds each component used between two samples (a process that started in between
    counts from its start; one that exited is lost)."""
    return {
        name: sum(t - before.get(name, {}).get(p, 0.0) for p, t in pids.items())
        for name, pids in after.items()
    }


def infra_dir() -> Path:
    root = Path(__file__).resolve().parents[1]
    return Path(os.environ.get("INFRA_DIR", root / ".infra")).resolve()
