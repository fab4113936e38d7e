"""numba's on-disk cache, keyed by the sources of the compiled code.

With `cache=True` numba reuses a kernel's compiled code while the file that defines it is
unchanged, even when a function it inlines from another file has changed (numba#1833; numba's
docs list it under the cache's limitations): after a pull or a checkout that changes
`domain/kernels/primitives.py` but not `kernels/proposing.py`, the old code runs, silently. numba
has no option that keys the cache on dependencies (numba#9304 asks for one), so the cache
directory is named after a hash of every source of the matching domain (the kernels and the
modules whose constants they freeze): changed code gets a new directory and is compiled afresh.
The `KEEP` most recently used directories stay, so switching between two checkouts does not
recompile each time; older ones are removed."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from numba.core import config

KEEP = 4
PREFIX = "domain-"


def sources_digest(root: Path) -> str:
    """A hash of every `.py` file under `root`: names and contents."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def use_versioned_cache(package: Path, base: Path | None = None) -> Path:
    """Point numba's cache at `base`/domain-<hash of package/domain> (`base`: NUMBA_CACHE_DIR if
    set, else the package's `__pycache__/numba`); prune all but the `KEEP` newest."""
    if base is None:
        env = os.environ.get("NUMBA_CACHE_DIR")
        base = Path(env) if env else package / "__pycache__" / "numba"
    target = base / (PREFIX + sources_digest(package / "domain"))
    try:
        target.mkdir(parents=True, exist_ok=True)
        os.utime(target)  # the newest in use: kept by the pruning below
        _prune(base, target)
    except OSError:  # a read-only install: numba falls back to its own locations
        return target
    config.CACHE_DIR = str(target)  # type: ignore[attr-defined]  # set by numba at import
    return target


def _prune(base: Path, target: Path) -> None:
    others = [d for d in base.glob(PREFIX + "*") if d.is_dir() and d != target]
    others.sort(key=lambda d: d.stat().st_mtime, reverse=True)
    for old in others[KEEP - 1 :]:
        shutil.rmtree(old, ignore_errors=True)
