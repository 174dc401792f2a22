"""The dashboard refuses what it must: paths outside the storage root (plain and encoded),
anything but GET, a foreign Host on loopback, and, off loopback, any request without the token."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from dash_runs import RAYTUNER
from loopback_ports import free_ports

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

# Raw request targets, sent as they are (a client library would normalise the dots away).
TRAVERSALS = [
    "/e/../../../../etc/passwd",
    "/e/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/e/%2e%2e/spec.yaml",
    "/e/..%2f..%2fsecret/spec.yaml",
    "/e/%2E%2E%2F%2E%2E%2Fsecret/download/trials.csv",
    "/api/e/..%2Fsecret/trials",
    "/static/../../secret/spec.yaml",
    "/static/..%2F..%2F..%2Fsecret%2Fspec.yaml",
    "/e/finished/trial/..%2F..%2F..%2Fsecret",
    "/e/linked/spec.yaml",  # a link in the root to a folder outside it
    "/e/linked",
]


def request(port: int, target: str, method: str = "GET", host: str = "127.0.0.1") -> tuple[int, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode(errors="replace")


@pytest.fixture(scope="module")
def secret(storage: Path) -> Path:
    """An experiment beside the storage root, which no URL may reach."""
    outside = storage.parent / "secret"
    outside.mkdir(exist_ok=True)
    (outside / "spec.yaml").write_text("name: secret\nSECRET: do-not-serve\n")
    (outside / "status.json").write_text('{"state": "completed", "name": "secret"}')
    link = storage / "linked"
    if not link.is_symlink():
        link.symlink_to(outside, target_is_directory=True)
    return outside


def test_no_url_reads_outside_the_storage_root(server: str, secret: Path) -> None:
    port = int(server.rsplit(":", 1)[1])
    assert request(port, "/e/finished/spec.yaml")[0] == 200  # the same server does answer inside
    for target in TRAVERSALS:
        status, body = request(port, target)
        assert status in (400, 403, 404), (target, status)
        assert "do-not-serve" not in body and "root:" not in body, target
    assert '"linked"' not in request(port, "/api/experiments")[1]  # not listed either


def test_read_only_and_loopback_hosts_only(server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert request(port, "/api/experiments", method)[0] == 405
    status, body = request(port, "/", host="attacker.example")  # DNS rebinding
    assert status == 403 and "loopback" in body


def test_off_loopback_a_token_is_printed_once_and_required(storage: Path) -> None:
    (port,) = free_ports(1)
    process = subprocess.Popen(
        [RAYTUNER, "dashboard", "--storage", str(storage), "--host", "0.0.0.0", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f":{port}/?token=" in line, line
        token = line.split("?token=")[1].split()[0]
        assert request(port, "/")[0] == 403
        assert request(port, "/api/experiments")[0] == 403
        assert request(port, "/api/experiments?token=wrong")[0] == 403
        status, body = request(port, f"/api/experiments?token={token}")
        assert status == 200 and '"finished"' in body
    finally:
        process.terminate()
        process.wait(timeout=30)
