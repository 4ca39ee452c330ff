"""Argument checks shared by the closed-form modules (messages name the argument and its value)."""

from __future__ import annotations

import numpy as np


def real_number(name: str, value, *, positive: bool = False, nonneg: bool = False) -> float:
    """``value`` as a finite float; TypeError if it is not a real scalar, ValueError if out of range."""
    if isinstance(value, bool) or not np.isscalar(value):
        raise TypeError(f"{name}={value!r} must be a real number")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}={value!r} must be a real number") from None
    if not np.isfinite(v):
        raise ValueError(f"{name}={value!r} must be finite")
    if positive and v <= 0:
        raise ValueError(f"{name}={value!r} must be > 0")
    if nonneg and v < 0:
        raise ValueError(f"{name}={value!r} must be >= 0")
    return v
