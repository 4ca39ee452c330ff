"""Geometric nested-dissection orderings of tensor-product index boxes.

Used to order the unknowns of the whole space-time Newton system before a sparse LU
factorisation (the ``"direct"`` linear solver): the space-time graph of the ACD system is the
``(nt, *grid.shape)`` lattice (a node couples to its spatial stencil neighbours and to the same
node at the adjacent time levels), for which recursive bisection by separator hyperplanes gives
far less fill than column minimum-degree orderings.
"""

from __future__ import annotations

import numpy as np


def nested_dissection(shape, periodic, leaf: int = 32) -> np.ndarray:
    """Nested-dissection ordering of the C-ordered nodes of a box of ``shape``.

    ``periodic[k]`` marks axes whose last index neighbours the first: a box spanning such an axis
    is first cut at its lower end (the wrap-around separator). Separators are numbered after the
    two halves they separate. Returns a permutation of ``range(prod(shape))``.
    """
    shape = tuple(int(s) for s in shape)
    periodic = tuple(bool(p) for p in periodic)
    if len(periodic) != len(shape):
        raise ValueError(f"periodic={periodic!r} needs one entry per axis of shape={shape!r}")
    idx = np.arange(int(np.prod(shape))).reshape(shape)
    out: list[np.ndarray] = []

    def box(lo, hi):
        return idx[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))].ravel()

    # explicit stack of tasks: ("split", lo, hi, per) or ("emit", nodes)
    stack = [("split", tuple([0] * len(shape)), shape, periodic)]
    while stack:
        task = stack.pop()
        if task[0] == "emit":
            out.append(task[1])
            continue
        _, lo, hi, per = task
        ext = [b - a for a, b in zip(lo, hi, strict=True)]
        size = int(np.prod(ext))
        if size == 0:
            continue
        if size <= leaf:
            out.append(box(lo, hi))
            continue
        wrap = next((k for k, p in enumerate(per) if p and ext[k] > 2), None)
        if wrap is not None:
            sep_hi = list(hi)
            sep_hi[wrap] = lo[wrap] + 1
            rest_lo = list(lo)
            rest_lo[wrap] += 1
            rest_per = list(per)
            rest_per[wrap] = False
            stack.append(("emit", box(lo, tuple(sep_hi))))
            stack.append(("split", tuple(rest_lo), hi, tuple(rest_per)))
            continue
        k = int(np.argmax(ext))
        mid = (lo[k] + hi[k]) // 2
        left_hi = list(hi)
        left_hi[k] = mid
        right_lo = list(lo)
        right_lo[k] = mid + 1
        sep_lo = list(lo)
        sep_lo[k] = mid
        sep_hi = list(hi)
        sep_hi[k] = mid + 1
        per_sub = tuple(False for _ in per)
        # popped in reverse: left half, right half, then the separator
        stack.append(("emit", box(tuple(sep_lo), tuple(sep_hi))))
        stack.append(("split", tuple(right_lo), hi, per_sub))
        stack.append(("split", lo, tuple(left_hi), per_sub))
    order = np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
    return order.astype(np.int64)
