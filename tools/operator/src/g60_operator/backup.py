"""`g60 backup` / `g60 restore`: the embedded shape's data (one SQLite file per service and the
operator key, under the data folder) as one .tar.gz. Each database is copied with SQLite's
online backup API, so a backup taken while `make run` serves is consistent; a restore needs the
platform stopped and keeps the files it replaces beside them."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import tarfile
import tempfile
import time
from pathlib import Path

from g60_operator.client import OperatorError

MANIFEST = "g60-backup.json"
FORMAT = 1
SIDECARS = (".sqlite-wal", ".sqlite-shm")  # a replaced database's journal goes with it


def backup(data_dir: Path, out: Path) -> list[str]:
    """Writes `out`; returns the names archived."""
    databases = sorted(data_dir.glob("*.sqlite"))
    if not databases:
        raise OperatorError(f"no embedded data in {data_dir} (no *.sqlite)", OperatorError.USAGE)
    names: list[str] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(out, "w:gz") as tar:
        for db in databases:
            copy = Path(tmp) / db.name
            src, dst = sqlite3.connect(db), sqlite3.connect(copy)
            try:
                src.backup(dst)
            finally:
                src.close()
                dst.close()
            tar.add(copy, arcname=db.name)
            names.append(db.name)
        key = data_dir / "operator.key"
        if key.exists():
            tar.add(key, arcname=key.name)
            names.append(key.name)
        manifest = json.dumps({"format": FORMAT, "files": names, "at": time.time()}).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    return names


def restore(archive: Path, data_dir: Path) -> tuple[list[str], Path | None]:
    """Unpacks `archive` into `data_dir`; returns the names restored and where the replaced
    files went (None if there were none)."""
    if not archive.is_file():
        raise OperatorError(f"no backup file {archive}", OperatorError.USAGE)
    try:
        tar = tarfile.open(archive, "r:gz")  # noqa: SIM115 (closed by the `with` below)
    except (tarfile.TarError, OSError) as exc:
        raise OperatorError(f"{archive} is not a g60 backup: {exc}", OperatorError.USAGE) from exc
    with tar:
        try:
            manifest = json.load(tar.extractfile(MANIFEST) or io.BytesIO(b"{}"))
        except (KeyError, ValueError) as exc:
            raise OperatorError(f"{archive} has no {MANIFEST}", OperatorError.USAGE) from exc
        names = [str(n) for n in manifest.get("files", [])]
        if manifest.get("format") != FORMAT or not names or any("/" in n for n in names):
            raise OperatorError(f"{archive}: unknown backup format", OperatorError.USAGE)
        data_dir.mkdir(parents=True, exist_ok=True)
        replaced = [data_dir / n for n in names if (data_dir / n).exists()]
        replaced += [p for p in data_dir.glob("*.sqlite-*") if p.suffix in SIDECARS]
        aside: Path | None = None
        if replaced:
            aside = data_dir / f"before-restore-{time.strftime('%Y%m%dT%H%M%S')}"
            aside.mkdir()
            for p in replaced:
                shutil.move(p, aside / p.name)
        for n in names:
            tar.extract(n, data_dir, filter="data")
    return names, aside
