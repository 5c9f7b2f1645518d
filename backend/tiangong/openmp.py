"""How torch's OpenMP worker threads wait between operations; set before torch is imported
(by `cli.py` and the benchmarks).

A CPU decode step is hundreds of small operations, each a parallel region a few to a few
hundred microseconds long. Workers that sleep as soon as a region ends
(`OMP_WAIT_POLICY=PASSIVE`, what the service used to set) are woken for every next one:
that cost 40% of decode speed here. Workers that spin without end (`ACTIVE`) take a core
from everything else while the service is idle, and made decoding collapse on a busy
2-core machine. A bounded spin (GNU OpenMP's `GOMP_SPINCOUNT`, the runtime torch's wheels
ship) keeps them awake across the gaps of a step and lets them sleep within a fraction of a
millisecond after it. Figures: docs/performance.md.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Busy-wait iterations before a worker sleeps: a few tens of microseconds on current CPUs.
SPIN_COUNT = "100000"


def waiting_environment() -> dict[str, str]:
    """What to add to the environment: bounded spinning, unless the user chose a wait
    policy or a spin count themselves."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return {}
    return {"GOMP_SPINCOUNT": SPIN_COUNT}


def configure_waiting() -> None:
    """Set `waiting_environment()` (before torch is imported)."""
    os.environ.update(waiting_environment())


def waiting() -> str:
    """How workers wait, for the benchmarks' reports."""
    policy = os.environ.get("OMP_WAIT_POLICY")
    if policy:
        return f"OMP_WAIT_POLICY={policy}"
    return f"GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT', 'default')}"


def in_a_passing_thread(work: Callable[[], T]) -> T:
    """`work()` run in a new thread that ends with it (blocking; its exception is raised).

    GNU OpenMP keeps a pool of workers for every living thread that ever ran a parallel
    operation, and once it manages more threads than there are cores it stops spinning
    (100 iterations instead of `SPIN_COUNT`): loading a model in a thread that stays alive
    (the caller's, an executor's) halved the generation thread's decode speed. A thread that
    ends takes its pool with it."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="tiangong-load", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]
