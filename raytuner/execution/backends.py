"""The backends by name (``execution.backend``), each module imported only when chosen."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from raytuner.spec.models import Backend

if TYPE_CHECKING:
    from raytuner.execution.context import RunBackend
    from raytuner.spec.models import Spec


def _ray() -> RunBackend:
    from raytuner.execution.ray_backend import RayBackend

    return RayBackend()


def _inline() -> RunBackend:
    from raytuner.execution.inline_backend import InlineBackend

    return InlineBackend()


BACKENDS: dict[Backend, Callable[[], RunBackend]] = {Backend.RAY: _ray, Backend.INLINE: _inline}


def backend_for(spec: Spec) -> RunBackend:
    """The backend ``spec.execution.backend`` names (its module imported now)."""
    return BACKENDS[spec.execution.backend]()
