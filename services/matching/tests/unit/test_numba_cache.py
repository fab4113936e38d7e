"""numba's cache is keyed by the domain's sources (`matching/numba_cache.py`): a kernel whose
inlined helper changed in another file is compiled again instead of running stale code."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from numba.core import config

from matching.numba_cache import KEEP, PREFIX, sources_digest, use_versioned_cache


@pytest.fixture
def numba_cache_dir() -> Iterator[None]:
    saved = config.CACHE_DIR
    yield
    config.CACHE_DIR = saved


def _package(root: Path, helper_returns: int) -> Path:
    domain = root / "pkg" / "domain"
    domain.mkdir(parents=True, exist_ok=True)
    (domain / "__init__.py").write_text("")
    (domain / "helper.py").write_text(
        "from numba import njit\n\n\n@njit(cache=True)\n"
        f"def helper() -> int:\n    return {helper_returns}\n"
    )
    if (domain / "kernel.py").exists():
        return root / "pkg"  # the kernel's own file unchanged (its stamp too)
    (domain / "kernel.py").write_text(
        "from numba import njit\n\nfrom domain.helper import helper\n\n\n@njit(cache=True)\n"
        "def kernel() -> int:\n    return helper() + 1\n"
    )
    return root / "pkg"


def _run_kernel(package: Path, versioned: bool) -> int:
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(package)!r})
        if {versioned!r}:
            from matching.numba_cache import use_versioned_cache
            use_versioned_cache(Path({str(package)!r}), Path({str(package / "cache")!r}))
        from domain.kernel import kernel
        print(kernel())
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip())


@pytest.mark.parametrize("versioned", [True, False], ids=["versioned", "numba-alone"])
def test_a_kernel_is_compiled_again_when_a_helper_in_another_file_changes(
    tmp_path: Path, versioned: bool
) -> None:
    package = _package(tmp_path, helper_returns=1)
    assert _run_kernel(package, versioned) == 2  # compiled, cached
    _package(tmp_path, helper_returns=10)  # kernel.py unchanged, its inlined helper changed
    answer = _run_kernel(package, versioned)
    if versioned:
        assert answer == 11
    else:  # what the versioned directory is for: numba alone runs the stale kernel
        assert answer == 2


def test_the_digest_follows_every_source_file(tmp_path: Path) -> None:
    package = _package(tmp_path, helper_returns=1)
    first = sources_digest(package / "domain")
    assert sources_digest(package / "domain") == first
    (package / "domain" / "helper.py").write_text("# changed\n")
    assert sources_digest(package / "domain") != first


def test_older_directories_are_pruned_beyond_keep(tmp_path: Path, numba_cache_dir: None) -> None:
    package = _package(tmp_path, helper_returns=0)
    base = tmp_path / "cache"
    used = []
    for n in range(KEEP + 2):
        _package(tmp_path, helper_returns=n)
        used.append(use_versioned_cache(package, base))
        assert str(used[-1]) == config.CACHE_DIR
    kept = sorted(d.name for d in base.glob(PREFIX + "*"))
    assert kept == sorted(d.name for d in used[-KEEP:])
