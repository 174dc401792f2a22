"""Saving a searcher for Ray's experiment checkpoints: its ``get_state()``, pickled."""

from __future__ import annotations

import pickle
from typing import Any


class PickledState:
    """``save``/``restore`` for searchers that define ``get_state``/``set_state``."""

    def get_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def set_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.get_state(), fh)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as fh:
            self.set_state(pickle.load(fh))
