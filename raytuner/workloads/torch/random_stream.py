"""Each training run's own random numbers, safe with runs in parallel threads.

A run draws its shuffles and dropout masks from its own :class:`torch.Generator` objects,
reached through the stream active *on the calling thread*; nothing in an epoch touches torch's
process-wide generator. Inline trials train in threads of one process: when each run swapped
its state into the global generator for an epoch, two runs at once drew each other's numbers
and a seeded search did not repeat.

Building a network still draws from the global generator (``nn.Linear`` initialises itself
from it), so :meth:`RandomStream.building` swaps the stream in under a process-wide lock;
building is short, training is not, and only building is serialised.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.nn import functional

_GLOBAL_GENERATOR = threading.Lock()
_active = threading.local()


class RandomStream:
    """A run's CPU (and CUDA) generators, saved in its checkpoints."""

    def __init__(self, seed: int, device: torch.device) -> None:
        self.seed = seed
        self.device = device
        self._cpu = torch.Generator().manual_seed(seed)
        self._cuda: torch.Generator | None = None

    def generator(self, device: torch.device) -> torch.Generator:
        """The generator for tensors on ``device``."""
        if device.type != "cuda":
            return self._cpu
        if self._cuda is None:
            self._cuda = torch.Generator(device=device).manual_seed(self.seed)
        return self._cuda

    @contextmanager
    def active(self) -> Iterator[None]:
        """Draw this thread's shuffles and dropout masks from this stream for the duration."""
        outer = getattr(_active, "stream", None)
        _active.stream = self
        try:
            yield
        finally:
            _active.stream = outer

    @contextmanager
    def building(self) -> Iterator[None]:
        """Make this stream torch's global CPU generator while networks are built."""
        with _GLOBAL_GENERATOR:
            outer = torch.get_rng_state()
            torch.set_rng_state(self._cpu.get_state())
            try:
                yield
            finally:
                self._cpu.set_state(torch.get_rng_state())
                torch.set_rng_state(outer)

    def state_dict(self) -> dict[str, Any]:
        return {"cpu": self._cpu.get_state(), "cuda": None if self._cuda is None else self._cuda.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._cpu.set_state(state["cpu"].cpu())
        cuda = state.get("cuda")
        if cuda is not None and self.device.type == "cuda":
            self.generator(self.device).set_state(cuda.cpu())


def active_generator(device: torch.device) -> torch.Generator | None:
    """The generator of the stream active on this thread (None: torch's global one)."""
    stream: RandomStream | None = getattr(_active, "stream", None)
    return None if stream is None else stream.generator(device)


def permutation(rows: int, device: torch.device) -> torch.Tensor:
    """A random order of ``rows`` rows, from the active stream."""
    return torch.randperm(rows, device=device, generator=active_generator(device))


class StreamDropout(nn.Dropout):
    """Dropout whose mask comes from the active stream (the same numbers ``nn.Dropout`` draws
    from the global generator on the CPU: a Bernoulli(1 - p) mask scaled by 1 / (1 - p))."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        generator = active_generator(input.device)
        if generator is None or not self.training or self.p == 0.0:
            return functional.dropout(input, self.p, self.training, self.inplace)
        if self.p == 1.0:
            return input * 0.0
        keep = torch.empty_like(input).bernoulli_(1.0 - self.p, generator=generator).div_(1.0 - self.p)
        return input.mul_(keep) if self.inplace else input * keep
