"""The latest allocation the engine knows: computed by the engine itself or elsewhere (the
matching service's background refresh, from a snapshot) and adopted; kept until a newer one."""

from __future__ import annotations

from matching.domain.results import Allocation


class LatestAllocation:
    def __init__(self) -> None:
        self.latest: Allocation | None = None  # the newest known, perhaps at an older version

    def adopt(self, allocation: Allocation) -> None:
        """Keep `allocation` unless a newer one is known."""
        if self.latest is None or allocation.market_version >= self.latest.market_version:
            self.latest = allocation

    def holds_at(self, version: int) -> bool:
        return self.latest is not None and self.latest.market_version == version

    @property
    def version(self) -> int | None:
        return None if self.latest is None else self.latest.market_version

    def as_map(self, alloc: Allocation | None) -> dict[str, str]:
        """Project id → allocated offer id of `alloc` (made once per allocation, by it)."""
        return {} if alloc is None else alloc.as_map()
