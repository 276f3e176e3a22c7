"""Shape checks at the entry of the public geometry functions (as kornia's KORNIA_CHECK_SHAPE).

``check_shape(x, "B,3,H,W")``: letters match any size, numbers must match exactly, and the
tensor's number of dimensions must equal the number of fields. A wrong shape raises
``ValueError`` naming the argument, instead of a broadcasting error three calls deeper.
"""
from __future__ import annotations

from typing import Any


def check_shape(x: Any, spec: str, name: str = "tensor") -> None:
    """Raise ValueError unless ``x.shape`` matches ``spec`` (comma-separated sizes or letters)."""
    fields = [f.strip() for f in spec.split(",")]
    shape = tuple(x.shape)
    # While an exporter traces a graph the sizes may be symbolic (not int): only the rank is checked.
    ok = len(shape) == len(fields) and all(not f.isdigit() or not isinstance(s, int) or int(f) == s
                                           for f, s in zip(fields, shape))
    if not ok:
        raise ValueError(f"{name}: expected shape ({spec}), got {shape}")
