"""`make bench-report`: how long `make report` takes to print its table on the seeded embedded
platform, beside baselines run in the same command: the interpreter alone, and `g60 --help`
(the CLI's imports). Starts a platform of its own on a temporary data folder (or measures
against URL= with G60_OPERATOR_KEY), seeds it, walks one deal to its close, then times each
command over several runs and prints medians and ratios. A benchmark, not a test: nothing
here fails on a number."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
G60 = str(Path(sys.executable).parent / "g60")


def _until_table(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds until the table's last line is printed, and until the process exits."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    table = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if b"why not" in line or b"open needs with no eligible offer" in line:
            table = time.perf_counter() - t0
    proc.wait()
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
    return table if table is not None else total, total


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default=None)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", "8090")))
    args = ap.parse_args()
    env = dict(os.environ)
    server = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.url is None:
            env |= {"G60_DATA_DIR": tmp, "G60_BUS": "memory", "G60_STORE": "sqlite"}
            server = subprocess.Popen(
                [sys.executable, "-m", "allinone", "run", "--port", str(args.port), "--no-seed"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=ROOT,
            )
            args.url = f"http://127.0.0.1:{args.port}"
            for _ in range(600):
                try:
                    if httpx.get(args.url + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        env["G60_URL"] = args.url
        try:
            subprocess.run([G60, "seed"], env=env, check=True, stdout=subprocess.DEVNULL)
            subprocess.run(
                [sys.executable, "-m", "allinone", "demo", "--url", args.url],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                cwd=ROOT,
            )
            out = Path(tmp) / "report"
            rows: dict[str, list[float]] = {"python": [], "help": [], "table": [], "all": []}
            for _ in range(args.runs):
                rows["python"].append(_timed([sys.executable, "-c", "pass"], env))
                rows["help"].append(_timed([G60, "--help"], env))
                table, total = _until_table([G60, "report", "--out", str(out)], env)
                rows["table"].append(table)
                rows["all"].append(total)
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=120)
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"g60 report on the seeded platform ({args.runs} runs, medians):")
    print(f"  python -c pass           {med['python']:6.2f} s")
    print(f"  g60 --help (imports)     {med['help']:6.2f} s")
    print(
        f"  g60 report: table shown  {med['table']:6.2f} s   "
        f"({med['table'] / med['help']:.2f}x --help, {med['table'] / med['python']:.1f}x python)"
    )
    print(
        f"  g60 report: CSV + 5 PNG  {med['all']:6.2f} s   ({med['all'] / med['help']:.2f}x --help)"
    )


if __name__ == "__main__":
    main()
