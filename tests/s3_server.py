"""The S3 endpoint the object-storage tests share (moto's server on loopback): imported by name
from here, not from ``conftest`` (a subfolder's conftest.py takes that module name when it is
collected first)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
