"""`g60 backup` / `g60 restore`: the embedded platform's data (`backup.py`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import httpx
import typer

from g60_chassis.settings import PlatformSettings
from g60_operator import backup as backups
from g60_operator.client import DEFAULT_URL, OperatorError
from g60_operator.common import Url, app, out


@app.command("backup")
def backup_command(
    out_file: Annotated[Path, typer.Argument(help="the archive to write (.tar.gz)")],
) -> None:
    """Archive the embedded platform's data (SQLite files, operator key); safe while running."""
    settings = PlatformSettings()
    if settings.store != "sqlite":
        raise OperatorError(
            "backup covers the embedded shape's SQLite data; back up MongoDB with mongodump",
            OperatorError.USAGE,
        )
    names = backups.backup(Path(settings.data_dir), out_file)
    out.print(f"backed up {', '.join(names)} to {out_file}")


@app.command("restore")
def restore_command(
    in_file: Annotated[Path, typer.Argument(help="an archive written by g60 backup")],
    url: Url = None,
) -> None:
    """Restore the embedded platform's data from a backup (the platform must be stopped)."""
    settings = PlatformSettings()
    if settings.store != "sqlite":
        raise OperatorError("restore covers the embedded shape's SQLite data", 2)
    base = (url or os.environ.get("G60_URL") or DEFAULT_URL).rstrip("/")
    try:
        httpx.get(f"{base}/healthz", timeout=1.0)
        running = True
    except httpx.HTTPError:
        running = False
    if running:
        raise OperatorError(f"the platform at {base} is running: stop it first", 2)
    names, aside = backups.restore(in_file, Path(settings.data_dir))
    out.print(f"restored {', '.join(names)} into {settings.data_dir}")
    if aside is not None:
        out.print(f"the files it replaced are in {aside}")
