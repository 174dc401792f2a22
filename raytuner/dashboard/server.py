"""Binding the dashboard's socket and serving it with uvicorn."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from raytuner.errors import ExperimentError, UsageError

if TYPE_CHECKING:
    import uvicorn

DEFAULT_PORT = 8265  # Ray's own dashboard's port; the first free one from here up is taken
PORTS_TRIED = 100
INSTALL_HINT = "raytuner dashboard needs Starlette and uvicorn: pip install 'raytuner[dashboard]'"
_BESIDE: dict[str, Dashboard] = {}  # storage -> the dashboard serving it from this process (one each)
_BESIDE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Dashboard:
    """A dashboard about to serve: where, and the token it asks for (None on loopback)."""

    storage: str
    host: str
    port: int
    token: str | None

    @property
    def url(self) -> str:
        """The URL to open: the token in it, once, when there is one."""
        host = socket.gethostname() if self.host in ("0.0.0.0", "::") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")


def start(storage: str, host: str, port: int | None, announce: Callable[[Dashboard], None]) -> None:
    """Serve the dashboard of ``storage`` until interrupted; ``announce`` gets it once bound.

    Raises:
        ExperimentError: Starlette or uvicorn is not installed.
        UsageError: ``storage`` is no storage root, the port is taken or the host cannot be bound.
    """
    _check_storage(storage)
    dashboard, server, sock = _prepare(storage, host, port)
    announce(dashboard)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def start_beside(storage: str, announce: Callable[[Dashboard], None]) -> Dashboard:
    """Serve the dashboard of ``storage`` on loopback from a daemon thread of this process (it
    ends with the process: ``raytuner run --dashboard``); ``storage`` may not exist yet. A
    storage already served from this process keeps its dashboard (runs in a notebook, one after
    another, share one server and one port).

    Raises:
        ExperimentError: Starlette or uvicorn is not installed.
        UsageError: no free port from 8265 up.
    """
    with _BESIDE_LOCK:
        dashboard = _BESIDE.get(storage)
        if dashboard is None:
            dashboard, server, sock = _prepare(storage, "127.0.0.1", None)
            threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="raytuner-dashboard", daemon=True).start()
            _BESIDE[storage] = dashboard
    announce(dashboard)
    return dashboard


def _prepare(storage: str, host: str, port: int | None) -> tuple[Dashboard, uvicorn.Server, socket.socket]:
    try:
        import uvicorn

        from raytuner.dashboard.app import build
    except ImportError as exc:
        raise ExperimentError(INSTALL_HINT) from exc
    from raytuner.dashboard.guard import is_loopback, new_token

    sock = _bind(host, port)
    token = None if is_loopback(host) else new_token()
    dashboard = Dashboard(storage, host, sock.getsockname()[1], token)
    config = uvicorn.Config(build(storage, token), log_level="warning", access_log=False, lifespan="off")
    return dashboard, uvicorn.Server(config), sock


def _check_storage(storage: str) -> None:
    """A bad ``--storage`` is one line now rather than a page of errors later; the default
    ``runs`` may not exist yet (the first run creates it, and the page shows it then).

    Raises:
        UsageError: ``storage`` is not a folder, or cannot be listed.
    """
    from raytuner import experiments
    from raytuner.results.layout import storage_root

    if storage == "runs" and not storage_root(storage).exists():
        return
    experiments(storage)


def _bind(host: str, port: int | None) -> socket.socket:
    """A listening socket on ``host``: ``port``, or the first free one from 8265 up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    candidates = [port] if port is not None else list(range(DEFAULT_PORT, DEFAULT_PORT + PORTS_TRIED))
    last: OSError | None = None
    for candidate in candidates:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, candidate))
            sock.listen(128)
            sock.set_inheritable(True)
            return sock
        except OSError as exc:
            with contextlib.suppress(OSError):
                sock.close()
            last = exc
    tried = f"port {port}" if port is not None else f"ports {DEFAULT_PORT}-{DEFAULT_PORT + PORTS_TRIED - 1}"
    raise UsageError(f"--host {host}: cannot listen on {tried}: {last}; expected a free port (--port N)")
