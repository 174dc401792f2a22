"""Credentials in storage URIs: taken out of every URI raytuner records or shows."""

from __future__ import annotations

import os

import pytest

from raytuner.errors import SpecError
from raytuner.results.folder import Folder, child_uri, redact, split_credentials


@pytest.mark.parametrize(
    ("uri", "public"),
    [
        ("s3://KEY:SECRET@bucket/runs", "s3://bucket/runs"),
        ("s3://KEY@bucket/runs?region=eu-west-1", "s3://bucket/runs?region=eu-west-1"),
        ("s3://bucket/runs?session_token=SECRET&scheme=http", "s3://bucket/runs?scheme=http"),
        ("abfs://acct:SECRET@container/runs?sas_token=SECRET&client_secret=SECRET", "abfs://container/runs"),
        ("gs://bucket/runs?access_token=SECRET", "gs://bucket/runs"),
        ("s3://bucket/runs", "s3://bucket/runs"),
    ],
)
def test_split_credentials(uri: str, public: str) -> None:
    assert split_credentials(uri)[0] == public
    assert redact(f"raytuner run spec.yaml --storage '{uri}' -n x") == f"raytuner run spec.yaml --storage '{public}' -n x"


def test_a_child_is_joined_onto_the_path_and_keeps_the_query() -> None:
    assert child_uri("s3://b/runs/?endpoint_override=h:1&scheme=http", "exp") == "s3://b/runs/exp?endpoint_override=h:1&scheme=http"


def test_s3_credentials_go_to_the_environment_and_others_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "another-identity")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    bucket = Folder.parse("s3://KEY:SEC%2FRET@bucket/runs/?region=us-east-1&endpoint_override=127.0.0.1:9")
    assert bucket.uri == "s3://bucket/runs?region=us-east-1&endpoint_override=127.0.0.1:9"
    assert (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]) == ("KEY", "SEC/RET")
    assert "AWS_SESSION_TOKEN" not in os.environ
    with pytest.raises(SpecError, match=r"gs://bucket/runs: credentials in a gs:// URI cannot be used") as refused:
        Folder.parse("gs://bucket/runs?access_token=SECRET")
    assert "SECRET" not in str(refused.value)


def test_the_resolved_spec_holds_the_storage_without_credentials() -> None:
    from raytuner.spec.loader import load_experiment_text

    text = """
name: e
trainable: {builtin: analytic, iterations: 3}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}}
storage: "s3://KEY:SECRET@bucket/runs?region=us-east-1"
"""
    assert load_experiment_text(text).resolved()["storage"] == "s3://bucket/runs?region=us-east-1"
