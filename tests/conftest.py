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

    from raytuner.execution.session import loopback_only

    paths = os.pathsep.join([str(FIXTURES), str(ROOT), os.environ.get("PYTHONPATH", "")]).strip(os.pathsep)
    with loopback_only():
        ray.init(
            address="local",  # never a `ray start` head, nor a dead one Ray's ray_current_cluster file names
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


from s3_server import S3Server  # noqa: E402  (tests import it from there: a conftest of a subfolder would shadow this one's name)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One S3-compatible server for the session; each test module uses buckets of its own."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()
