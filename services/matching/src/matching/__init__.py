"""The matching service. Importing it first points numba's cache at a directory named after the
compiled code's sources (`numba_cache.py`: numba alone would run stale kernels after a change)."""

from pathlib import Path

from matching.numba_cache import use_versioned_cache

use_versioned_cache(Path(__file__).parent)
