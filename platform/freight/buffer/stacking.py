"""Stack a chunk's values into one array: numpy arrays with `np.stack`, torch tensors with `torch.stack`.

torch is never imported here: if it is not already loaded, no value can be a tensor, so `import
freight.buffer` works without torch installed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from freight.errors import SerializationError


def _kind(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return "numpy"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return "torch"
    return type(value).__name__


def stack(values: Sequence[Any]) -> Any:
    """Stack equally shaped numpy arrays or torch tensors along a new first axis.

    Raises `ValueError` for an empty sequence (an empty final chunk has nothing to stack) or for mismatched
    shapes, and `SerializationError` (a TypeError) for values that are not all arrays of one kind (e.g.
    unresolved proxies: resolve them first).
    """
    if len(values) == 0:
        raise ValueError("nothing to stack: the chunk is empty (an empty final chunk?); check len(chunk)")
    kinds = {_kind(v) for v in values}
    if len(kinds) != 1 or not kinds <= {"numpy", "torch"}:
        raise SerializationError(
            f"cannot stack values of kind(s) {', '.join(sorted(kinds))}: stacking needs all numpy arrays or "
            "all torch tensors (resolve proxies first)"
        )
    try:
        if "numpy" in kinds:
            return np.stack(list(values))
        torch = sys.modules["torch"]
        return torch.stack(list(values))
    except (ValueError, RuntimeError) as exc:
        shapes = sorted({tuple(v.shape) for v in values})
        raise ValueError(f"cannot stack values of different shapes {shapes[:4]}: {exc}") from None
