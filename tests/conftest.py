"""Shared fixtures: one real local Ray for the whole session, bound to 127.0.0.1."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass(frozen=True)
class S3Server:
    """An S3 API on loopback (moto's server): its endpoint, and how raytuner's users reach it."""

    endpoint: str  # http://127.0.0.1:PORT

    @property
    def env(self) -> dict[str, str]:
        """What a user's shell (and every Ray node) sets to use it: pyarrow, and so Ray, read these."""
        return {**S3_CREDENTIALS, "AWS_ENDPOINT_URL_S3": self.endpoint, "AWS_EC2_METADATA_DISABLED": "true"}

    def client(self) -> Any:
        """A pyarrow S3 filesystem on it, configured explicitly (independent of the environment)."""
        import pyarrow.fs as pafs

        return pafs.S3FileSystem(
            endpoint_override=self.endpoint.removeprefix("http://"),
            scheme="http",
            access_key="testing",
            secret_key="testing",
            region="us-east-1",
            allow_bucket_creation=True,
        )


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
