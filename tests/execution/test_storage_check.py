"""The storage is checked before a run starts: a folder that cannot be written is refused.

Tests run as root, where a chmod'ed read-only folder is still writable; the unwritable
storages here are therefore paths through a regular file (the kernel refuses them for
everyone, root included), a storage that is itself a file, and a simulated permission
error. The chmod case runs only for a regular user.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from raytuner.cli import app
from raytuner.errors import SpecError
from raytuner.execution.events import Recorder
from raytuner.execution.runner import RunOptions, run_experiment
from raytuner.results import layout
from raytuner.spec.loader import load_experiment_text

SPEC = """
name: probe
trainable: {builtin: analytic, iterations: 2}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}}
search: {num_samples: 1}
"""


def test_a_writable_folder_is_created_and_left_clean(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b" / "runs"
    layout.check_writable(root)
    assert root.is_dir() and list(root.iterdir()) == []


def test_a_storage_under_a_regular_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(SpecError) as caught:
        layout.check_writable(blocker / "runs")
    message = str(caught.value)
    assert f"cannot write experiment folders under {blocker / 'runs'}" in message
    assert f"{blocker} is a file, not a folder" in message
    assert "--storage" in message and caught.value.exit_code == 2


def test_a_storage_that_is_a_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "runs"
    blocker.write_text("")
    with pytest.raises(SpecError, match="is a file, not a folder"):
        layout.check_writable(blocker)


def test_a_permission_error_says_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Path, data: bytes) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_bytes", refuse)
    with pytest.raises(SpecError, match=r"runs: permission denied; make it a writable folder"):
        layout.check_writable(tmp_path / "runs")


def test_a_read_only_file_system_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Path, data: bytes) -> int:
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "write_bytes", refuse)
    with pytest.raises(SpecError, match="the file system is read-only"):
        layout.check_writable(tmp_path / "runs")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    root.chmod(0o500)
    try:
        with pytest.raises(SpecError, match="permission denied"):
            layout.check_writable(root)
    finally:
        root.chmod(0o700)


def test_run_refuses_an_unwritable_storage_before_ray_starts(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("")
    experiment = load_experiment_text(SPEC + f"storage: {blocker / 'runs'}\n", source="probe.yaml")
    with pytest.raises(SpecError) as caught:
        run_experiment(experiment, RunOptions(), Recorder())
    assert str(caught.value).startswith("probe.yaml: storage: cannot write experiment folders under ")


def test_cli_run_says_it_in_one_line_with_exit_2(tmp_path: Path) -> None:
    spec = tmp_path / "probe.yaml"
    spec.write_text(SPEC)
    blocker = tmp_path / "file.txt"
    blocker.write_text("")
    result = CliRunner().invoke(app, ["run", str(spec), "--storage", str(blocker / "runs")])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "is a file, not a folder" in lines[0] and str(blocker) in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("url", ["ftp://host/runs", "http://host/runs"])
def test_a_url_raytuner_cannot_run_on_is_refused_at_validation(url: str, tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_experiment_text(SPEC + f"storage: {url}\n", source="probe.yaml")
    message = str(caught.value)
    assert message.startswith("probe.yaml:") and ": storage: " in message
    assert "is not a storage raytuner can run on" in message and "s3://" in message
    spec = tmp_path / "probe.yaml"
    spec.write_text(SPEC + f"storage: {url}\n")
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 2 and "is not a storage raytuner can run on" in result.stderr


@pytest.mark.parametrize("url", ["s3://bucket/runs", "gs://bucket/runs"])
def test_object_storage_passes_validation(url: str) -> None:
    assert load_experiment_text(SPEC + f"storage: {url}\n").spec.storage == url


def test_object_storage_without_network_is_refused_within_the_deadline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine has no network: pyarrow's GCS client alone would retry for minutes."""
    import time

    from raytuner.results import remote

    monkeypatch.setattr(remote, "PROBE_DEADLINE_S", 2.0)
    monkeypatch.setenv("RAYTUNER_CACHE", str(tmp_path / "cache"))
    spec = tmp_path / "probe.yaml"
    spec.write_text(SPEC)
    started = time.monotonic()
    result = CliRunner().invoke(app, ["run", str(spec), "--storage", "gs://raytuner-nonexistent/x"])
    assert time.monotonic() - started < 8
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: {spec}: storage: cannot write experiment folders under gs://raytuner-nonexistent/x: no answer within "
        "2 s; check this machine reaches the storage (network, proxy, endpoint) and the credentials "
        "(AWS_ACCESS_KEY_ID/AWS_PROFILE, GOOGLE_APPLICATION_CREDENTIALS or the VM's role) and, for an S3-compatible "
        "server, AWS_ENDPOINT_URL_S3"
    ]
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("spec.yaml"))
