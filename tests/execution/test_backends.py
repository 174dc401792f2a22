"""Every ``execution.backend`` has one backend behind the same interface, chosen from the spec."""

from __future__ import annotations

import pytest

from raytuner.errors import UsageError
from raytuner.execution.backends import BACKENDS, backend_for
from raytuner.execution.context import RunOptions
from raytuner.spec.models import Backend, Spec


def spec_for(backend: Backend) -> Spec:
    return Spec.model_validate(
        {
            "name": "b",
            "trainable": {"builtin": "analytic"},
            "metric": "loss",
            "mode": "min",
            "space": {"x": {"uniform": [0, 1]}},
            "execution": {"backend": backend.value},
        }
    )


@pytest.mark.parametrize("backend", list(Backend))
def test_each_backend_is_registered_and_answers_the_interface(backend: Backend) -> None:
    assert set(BACKENDS) == set(Backend)
    chosen = backend_for(spec_for(backend))
    for method in ("check", "fit", "hint"):
        assert callable(getattr(chosen, method))
    chosen.check(RunOptions(), new_folder=True)  # a private local run: every backend takes it


@pytest.mark.parametrize(
    ("options", "said"), [(RunOptions(address="127.0.0.1:1"), "Ray cluster was given"), (RunOptions(num_gpus=1), "--gpus")]
)
def test_the_inline_backend_refuses_what_asks_for_a_ray(options: RunOptions, said: str) -> None:
    with pytest.raises(UsageError, match=said):
        backend_for(spec_for(Backend.INLINE)).check(options, new_folder=True)
