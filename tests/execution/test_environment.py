"""``environment.json``: every installed package's version, and a dirty tree's changes beside it."""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from raytuner.execution.environment import GIT_DIFF_LIMIT, installed_packages, write_environment
from raytuner.results import layout
from raytuner.spec.loader import load_experiment_text

SPEC = """
name: env
trainable: {builtin: analytic, iterations: 3}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}}
"""


def test_every_installed_distribution_is_recorded_with_its_version() -> None:
    recorded = installed_packages()
    for name in ("optuna", "nevergrad", "cmaes", "scikit-learn", "ray", "pyarrow"):
        assert recorded[name] == metadata.version(name), name
    known = {}
    for dist in metadata.distributions():  # every one, the slow way
        known.setdefault(dist.metadata["Name"].lower().replace("_", "-").replace(".", "-"), dist.version)
    assert {name: recorded.get(name) for name in known} == known


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.mark.parametrize("big", [False, True])
def test_a_dirty_tree_is_recorded_with_its_diff(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, big: bool) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "train.py").write_text("lr = 0.1\n")
    _git(repo, "add", "train.py")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    changed = "lr = 0.2\n" + ("# padding\n" * (GIT_DIFF_LIMIT // 8) if big else "")
    (repo / "train.py").write_text(changed)
    (repo / "notes.txt").write_text("untracked\n")
    monkeypatch.chdir(repo)
    folder = tmp_path / "run"
    folder.mkdir()
    write_environment(folder, load_experiment_text(SPEC, "env.yaml"))

    git = json.loads((folder / layout.ENVIRONMENT).read_text())["git"]
    whole = subprocess.run(["git", "diff", "HEAD", "--binary"], cwd=repo, capture_output=True, check=True).stdout
    assert git["dirty"] is True and git["untracked"] == ["notes.txt"] and git["untracked_count"] == 1
    assert (git["diff_bytes"], git["diff_sha256"]) == (len(whole), hashlib.sha256(whole).hexdigest())
    kept = (folder / layout.GIT_DIFF).read_bytes()
    assert b"-lr = 0.1\n+lr = 0.2\n" in kept
    assert git["diff_truncated"] is big and kept == whole[:GIT_DIFF_LIMIT]
    assert len(kept) == (GIT_DIFF_LIMIT if big else len(whole))
    # the diff applies to the recorded commit and gives the tree back
    if not big:
        _git(repo, "checkout", "--", "train.py")
        _git(repo, "apply", str(folder / layout.GIT_DIFF))
        assert (repo / "train.py").read_text() == changed


def test_a_clean_tree_has_no_diff(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "a").write_text("a\n")
    _git(tmp_path, "add", "a")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "run"
    folder.mkdir()
    (tmp_path / ".git" / "info" / "exclude").write_text("run/\n")
    write_environment(folder, load_experiment_text(SPEC, "env.yaml"))
    git = json.loads((folder / layout.ENVIRONMENT).read_text())["git"]
    assert git["dirty"] is False and "diff_sha256" not in git
    assert not (folder / layout.GIT_DIFF).exists()
