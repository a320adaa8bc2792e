"""One definition of each formula for numpy arrays and torch tensors alike.

The survey's formulas (order mapping, item means, indices, losses, the mass floor) are written
once against the Python array API standard, through ``array_api_compat`` (the data-apis
consortium's wrapper that scipy and scikit-learn use), so that the numpy readings and the
differentiable torch objective run the very same code. Torch-free itself: torch is reached only
through the namespace of a tensor that is passed in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import array_namespace, device, is_torch_array


def namespace(*arrays: Any) -> Any:
    """The array API namespace of ``arrays`` (numpy's for lists and plain numbers)."""
    real = [a for a in arrays if hasattr(a, "shape")]
    return array_namespace(*real) if real else array_namespace(np.zeros(0))


def as_float(values: Any, like: Any = None) -> Any:
    """``values`` as a float64 array (a tensor of ``like``'s kind and device where ``like`` is
    one; numpy otherwise)."""
    if like is not None and is_torch_array(like):
        xp = array_namespace(like)
        return xp.asarray(np.array(values, dtype=np.float64) if not is_torch_array(values)
                          else values, dtype=xp.float64, device=device(like))
    if is_torch_array(values):
        return values.double()
    return np.asarray(values, dtype=np.float64)


def constant(values: Any, like: Any) -> Any:
    """A constant (weights, a target) in the kind, dtype and device of ``like``."""
    xp = array_namespace(like)
    arr = np.array(values, dtype=np.float64)  # a writable copy (torch will not wrap read-only)
    return xp.asarray(arr, dtype=like.dtype, device=device(like))


__all__ = ["as_float", "constant", "is_torch_array", "namespace"]
