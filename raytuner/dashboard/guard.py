"""What keeps the dashboard safe: read-only, loopback unless a token is given, and names
that can only mean a folder directly under the storage root."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from http.cookies import SimpleCookie
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from raytuner.errors import UsageError

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOKEN_COOKIE = "raytuner_dashboard"
LOOPBACK_NAMES = ("localhost",)
# The page's script and style come from this server only; the charts are inline SVG.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) only accepts connections from this machine."""
    if host.strip("[]") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def folder_name(name: str) -> str:
    """``name`` when it can only mean a folder directly under the storage root.

    Raises:
        UsageError: a path (a separator, ``..``, a leading dot, a control character) rather than a name.
    """
    if not name or name.startswith(".") or any(c in name for c in "/\\") or any(ord(c) < 32 for c in name):
        raise UsageError(f"{name!r} is not an experiment name (expected a folder name under the storage root)")
    return name


def inside(root: Path, name: str) -> Path:
    """The local folder ``root/name``, refused if it (or a link on the way) leads outside ``root``.

    Raises:
        UsageError: it leads outside the storage root.
    """
    target = root / folder_name(name)
    if not target.resolve().is_relative_to(root.resolve()):
        raise UsageError(f"{name!r} leads outside the storage root")
    return target


class Guard:
    """ASGI middleware: GET and HEAD only; with a token, every request must carry it (query
    ``?token=`` once, then the cookie it sets); on loopback, the Host header must be loopback
    too (a web page elsewhere cannot reach it by DNS rebinding)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, text = refusal
            await _plain(send, status, text)
            return
        query_token = _query_token(scope)
        set_cookie = self.token is not None and query_token is not None

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                if set_cookie:
                    cookie = f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                    extra.append((b"set-cookie", cookie.encode()))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        if scope["method"] not in ("GET", "HEAD"):
            return 405, "read-only: the dashboard answers GET only"
        if self.token is None:
            host = urlsplit("//" + headers.get("host", "")).hostname
            if host and not is_loopback(host):
                return 403, f"Host {host!r} refused: this dashboard listens on loopback only"
            return None
        given = _query_token(scope)
        if given is None:
            cookie = SimpleCookie(headers.get("cookie", ""))
            given = cookie[TOKEN_COOKIE].value if TOKEN_COOKIE in cookie else None
        if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
            return 403, "a token is required: open the URL raytuner dashboard printed (it ends in ?token=...)"
        return None


def _query_token(scope: Scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
