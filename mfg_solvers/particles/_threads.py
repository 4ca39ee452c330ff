"""Thread count for small kernels.

Launching a parallel region costs tens of microseconds on an idle machine and can cost
milliseconds of spinning when the cores are shared, far more than the work of a small kernel.
Below :data:`PARALLEL_WORK` units of work (about particle updates) the kernels run on one thread.
Results do not depend on the thread count (the work is split in fixed blocks), so this only
changes the speed.
"""

from __future__ import annotations

from contextlib import contextmanager

import numba

#: Work (particle updates, or pair evaluations / 16) from which kernels use all threads.
PARALLEL_WORK = 1 << 15


@contextmanager
def threads_for(work: float):
    """Run the enclosed kernels on one thread when ``work < PARALLEL_WORK``."""
    if work >= PARALLEL_WORK:
        yield
        return
    try:
        old = numba.get_num_threads()
    except Exception:  # pragma: no cover - threading layer unavailable
        yield
        return
    if old == 1:
        yield
        return
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(old)
