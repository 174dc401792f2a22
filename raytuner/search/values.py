"""Which reported values a searcher may learn from."""

from __future__ import annotations

import math
from typing import Any, TypeGuard


def finite_number(value: Any) -> TypeGuard[int | float]:
    """A real, finite number (not a bool, None, NaN, an infinity or a string)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
