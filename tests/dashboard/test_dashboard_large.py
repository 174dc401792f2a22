"""An experiment past the sizes drawn whole, served in-process: the charts' payload is bounded
and labelled as a sample, and a trial's page shows that trial's reports."""

from __future__ import annotations

import json
import re
import warnings

import pytest
from large_experiment import write_large_experiment

from raytuner.dashboard.app import build
from raytuner.results.report import sample

with warnings.catch_warnings():  # Starlette's test client warns that it runs over httpx: not ours to act on
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.slow
TRIALS, REPORTS = 300, 40  # past the 200 trials drawn whole


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    root = tmp_path_factory.mktemp("large-dash")
    write_large_experiment(root / "large", TRIALS, REPORTS)
    return TestClient(build(str(root)), base_url="http://127.0.0.1:8265")


def test_the_charts_of_a_large_experiment_are_a_bounded_labelled_sample(client: TestClient) -> None:
    answer = client.get("/api/e/large/charts")
    assert answer.status_code == 200
    assert len(answer.content) < 600_000  # every trial drawn: about 1.5 MB here
    sections = {s["kind"]: s for s in json.loads(answer.content)["sections"]}
    for kind in ("best-so-far", "learning-curves", "parallel-coordinates"):
        assert f"of {TRIALS} trials" in sections[kind]["sample"], kind
        assert "A sample" in sections[kind]["caption"]
    assert sections["learning-curves"]["html"].count("<polyline") == sample.TOP + 1  # the best lines and the median
    assert "sample" not in sections["parameter-importance"]  # bars, one per parameter: nothing left out


def test_a_trials_page_shows_its_own_reports(client: TestClient) -> None:
    answer = client.get("/e/large/trial/abcde_00123")
    assert answer.status_code == 200 and "abcde_00123" in answer.text
    curve = re.search(r'<polyline[^>]* points="([^"]*)"', answer.text.split("id='curve'")[1])
    assert curve is not None and len(curve.group(1).split()) == REPORTS  # its reports, each once
    assert client.get("/e/large/trial/abcde_99999").status_code == 404
