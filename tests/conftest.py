"""Shared fixtures: one real local Ray for the whole session, bound to 127.0.0.1."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """A local Ray shared by every test that runs experiments in-process.

    raytuner reuses a Ray already initialised in the process and leaves it running, so
    tests pay Ray's start-up once. Workers import test trainables from tests/fixtures.
    """
    import ray

    paths = os.pathsep.join([str(FIXTURES), str(ROOT), os.environ.get("PYTHONPATH", "")]).strip(os.pathsep)
    ray.init(
        num_cpus=2,
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        runtime_env={"env_vars": {"PYTHONPATH": paths}},
    )
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "runs"
