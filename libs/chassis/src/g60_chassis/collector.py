"""The garbage collector of a service process, once it has started.

Everything a service holds from its start (FastAPI's routes and models, pydantic's validators,
the clients of the store and the broker: ~95,000 objects in the projects service) lives as long
as the process, yet Python's collector scans all of it again in every pass of its older
generations, and those passes come as the young one's survivors (requests in flight) are
promoted. py-spy's native samples of the projects service at 50 needs/s: 19% of its busy CPU in
`gc_collect_main`.

`settle` (called once the services of a process `serve` runs have started; not in tests, which
start many apps in one process and would keep each one's cycles) freezes what exists then
(`gc.freeze`: out of the collector's reach for good; reference counting still frees it) and
collects the youngest generation every `gen0` allocations instead of 700 (in process, a POST
of a need: 0.032 → 0.002 young passes, 0.004 → 0.002 middle ones). The price: a
reference cycle among the objects frozen at start that later becomes garbage is never collected
(there are none to speak of: they are the process's own structures); a cycle made later lives
until its generation's pass, which runs less often (more memory held, not leaked).
"""

from __future__ import annotations

import gc

_serving = [False]


def serving() -> None:
    """This process serves (`serving.serve`): `settle_if_serving` acts."""
    _serving[0] = True


def settle_if_serving(gen0: int) -> None:
    if _serving[0]:
        settle(gen0)


def settle(gen0: int) -> None:
    """Freeze what exists now; the youngest generation's threshold `gen0` (0: Python's)."""
    gc.freeze()
    if gen0 > 0:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gen0, gen1, gen2)
