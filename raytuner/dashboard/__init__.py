"""``raytuner dashboard``: every experiment under a storage root, live, in the browser.

A small read-only ASGI app (Starlette, served by uvicorn) over the public API
(:func:`raytuner.experiments`, :func:`raytuner.open` and :class:`raytuner.Experiment`'s
reading methods): :mod:`.app` routes and answers, :mod:`.pages` writes the HTML, :mod:`.guard`
keeps it safe (loopback, token, GET only, nothing outside the storage root), :mod:`.server`
binds and serves. Its script and style ship in ``static/``: nothing is fetched from elsewhere.
"""

from __future__ import annotations

from raytuner.dashboard.server import INSTALL_HINT, Dashboard, start, start_beside

__all__ = ["INSTALL_HINT", "Dashboard", "start", "start_beside"]
