"""Connecting to a cluster's Jobs API (the dashboard's HTTP port), with token authentication.

Ray's own errors for a missing or wrong token are several lines long and say nothing about
where raytuner looked for the token; these say it in one line, with the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from raytuner.errors import JobError
from raytuner.execution.session import token_refused

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

T = TypeVar("T")

def connect(address: str) -> JobSubmissionClient:
    """A Jobs API client for the dashboard at ``address`` (``http://HOST:8265``).

    Raises:
        UsageError: the cluster wants a token and none was sent, or it refused the token.
        JobError: the Jobs API cannot be reached.
    """
    from raytuner.execution.session import enable_token_auth

    enable_token_auth()  # before Ray is imported: it reads RAY_AUTH_MODE at import
    from ray.job_submission import JobSubmissionClient

    with translated(address):
        return JobSubmissionClient(address)


@contextmanager
def translated(address: str) -> Iterator[None]:
    """Turn Ray's authentication and connection errors into one clear raytuner error."""
    from ray.exceptions import AuthenticationError
    from requests.exceptions import RequestException

    try:
        yield
    except AuthenticationError as exc:
        raise token_refused(address, missing=str(exc).startswith("Authentication required")) from exc
    except RuntimeError as exc:  # the Jobs API answered with an HTTP error
        raise JobError(f"the Ray Jobs API at {address} refused the request: {exc}") from exc
    except (ConnectionError, RequestException) as exc:
        raise JobError(
            f"cannot reach the Ray Jobs API at {address}: is the dashboard running there "
            "(through an SSH tunnel: `ray dashboard CLUSTER.yaml`)?"
        ) from exc


def call(address: str, action: Callable[[], T]) -> T:
    """Run one Jobs API call with raytuner's error translation."""
    with translated(address):
        return action()
