"""Connecting to a cluster's Jobs API (the dashboard's HTTP port), with token authentication.

Ray's own errors for a missing or wrong token are several lines long and say nothing about
where raytuner looked for the token; these say it in one line, with the fix.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from raytuner.errors import JobError
from raytuner.execution.session import token_refused

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

T = TypeVar("T")

# Ray's SDK loggers that write INFO lines ("Uploading package ...", "Creating a file package
# ...", "WebSocket closed ...") to stderr, among raytuner's own lines; shown with -v.
SDK_LOGGERS = ("ray.dashboard", "ray._private.runtime_env")
# A head node just started answers 500 "No available agent to submit job" until its
# dashboard agent registers; how long a call waits for one, and how often it asks again.
AGENT_WAIT_S = 60.0
AGENT_POLL_S = 2.0

def connect(address: str, *, verbose: bool = False) -> JobSubmissionClient:
    """A Jobs API client for the dashboard at ``address`` (``http://HOST:8265``).

    ``verbose``: let Ray's SDK log its INFO lines (uploads, log streams) to stderr.

    Raises:
        UsageError: the cluster wants a token and none was sent, or it refused the token.
        JobError: the Jobs API cannot be reached.
    """
    from raytuner.execution.session import enable_token_auth

    enable_token_auth()  # before Ray is imported: it reads RAY_AUTH_MODE at import
    from ray.job_submission import JobSubmissionClient

    # Ray's SDK modules set their own loggers to INFO when imported: each one is set, not a parent
    known = [name for name in logging.root.manager.loggerDict if name.startswith(SDK_LOGGERS)]
    for name in {*SDK_LOGGERS, *known}:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
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
    """Run one Jobs API call with raytuner's error translation.

    While the head has no dashboard agent yet (a cluster just started), the call is repeated
    for up to :data:`AGENT_WAIT_S`, with one line on stderr saying so.
    """
    end = time.monotonic() + AGENT_WAIT_S
    said = False
    while True:
        try:
            with translated(address):
                return action()
        except JobError as exc:
            if "No available agent" not in str(exc) or time.monotonic() >= end:
                raise
            if not said:
                print(
                    f"the Ray Jobs API at {address} has no agent yet (the cluster is starting?): "
                    f"asking again for up to {AGENT_WAIT_S:g} s",
                    file=sys.stderr,
                )
                said = True
            time.sleep(AGENT_POLL_S)
