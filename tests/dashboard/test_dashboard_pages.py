"""What the real server answers beside the live pages: a trial's page, the spec and the best
configurations as YAML, the downloads, the comparison of two experiments, and the
dashboard ``raytuner run --dashboard`` serves beside its run."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pyarrow.parquet as pq
import pytest
import yaml
from dash_runs import RAYTUNER, SPEC

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read(), response.headers.get("content-type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("content-type", "")


def test_spec_best_and_downloads(server: str) -> None:
    status, body, _ = get(server + "/e/finished/spec.yaml")
    assert status == 200 and yaml.safe_load(body)["name"] == "finished"
    status, body, _ = get(server + "/e/finished/best.yaml?n=3")
    best = yaml.safe_load(body)
    assert len(best) == 3 and set(best[0]["config"]) == {"x", "y"}
    assert best[0]["values"]["loss"] <= best[1]["values"]["loss"] <= best[2]["values"]["loss"]
    status, body, kind = get(server + "/e/finished/download/trials.parquet")
    assert status == 200 and "parquet" in kind and pq.read_table(io.BytesIO(body)).num_rows == 8
    status, body, kind = get(server + "/e/finished/download/results.csv")
    assert status == 200 and kind.startswith("text/csv")
    assert len(list(csv.DictReader(io.StringIO(body.decode())))) == 8 * 3  # every report
    assert get(server + "/e/finished/download/trials.exe")[0] == 404


def test_charts_unchanged_since_the_version_shown_are_not_sent_again(server: str) -> None:
    status, body, _ = get(server + "/api/e/finished/charts")
    first = json.loads(body)
    assert status == 200 and first["sections"] and first["version"]
    status, body, _ = get(server + "/api/e/finished/charts?since=" + first["version"])
    assert json.loads(body) == {"state": "completed", "version": first["version"], "unchanged": True}
    assert json.loads(get(server + "/api/e/finished/charts?since=older")[1])["sections"] == first["sections"]


def test_the_trial_table_is_paged_on_the_server(server: str) -> None:
    status, body, _ = get(server + "/api/e/finished/trials?size=3&page=3&sort=config/y&desc=1")
    page = json.loads(body)
    assert status == 200 and (page["page"], page["pages"], page["matched"], page["total"]) == (3, 3, 8, 8)
    assert len(page["rows"]) == 2
    ys = [row[page["columns"].index("config/y")] for row in page["rows"]]
    assert ys == sorted(ys, reverse=True)
    status, body, _ = get(server + "/api/e/finished/trials?where=" + quote("nope > 1"))
    assert status == 404 and "nope" in json.loads(body)["error"]


def test_a_trials_page_and_its_pbt_schedule(server: str) -> None:
    status, body, _ = get(server + "/e/finished/best.yaml?n=1")
    trial_id = yaml.safe_load(body)[0]["trial_id"]
    status, body, _ = get(server + f"/e/finished/trial/{quote(trial_id)}?metric=loss")
    page = body.decode()
    assert status == 200 and "Configuration" in page and "<polyline" in page and "checkpoints" in page
    assert get(server + "/e/finished/trial/nope")[0] == 404
    status, body, _ = get(server + "/e/pbt/trial/p2")  # p2 went on from p0's model, which went on from p3's
    schedule = body.decode().partition("PBT schedule followed")[2]
    assert status == 200 and schedule, "no PBT schedule section"
    assert schedule.index("<code>p3</code>") < schedule.index("<code>p2</code>") and "0.0384" in schedule
    assert "PBT schedule" not in get(server + f"/e/finished/trial/{quote(trial_id)}")[1].decode()


def test_compare_overlays_the_best_so_far(server: str) -> None:
    status, body, _ = get(server + "/compare?e=finished&e=other")
    page = body.decode()
    assert status == 200 and page.count('class="series best"') == 2
    assert "Best configurations: what differs" in page and "search.num_samples" in page
    assert get(server + "/compare?e=finished")[0] == 404


def test_run_dashboard_serves_beside_the_run(storage: Path) -> None:
    spec = storage.parent / "beside.yaml"
    spec.write_text(SPEC.format(name="beside", iterations=6, sleep=0.3, samples=4))
    process = subprocess.Popen(
        [RAYTUNER, "run", str(spec), "--storage", str(storage), "--quiet", "--dashboard"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=storage.parent,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        found = re.fullmatch(r"dashboard: (http://127\.0\.0\.1:\d+)/\n", line)
        assert found, line
        status, body, _ = get(found.group(1) + "/api/experiments")
        assert status == 200 and any(e["name"] == "beside" for e in json.loads(body)["experiments"])
        assert process.wait(timeout=300) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_runs_from_python_with_a_dashboard_share_one_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import raytuner

    storage = tmp_path / "runs"
    urls = []
    for name in ("first", "second"):
        spec = yaml.safe_load(SPEC.format(name=name, iterations=2, sleep=0.0, samples=2))
        raytuner.run(spec, storage=str(storage), progress=False, dashboard=True)
        (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("dashboard: ")]
        urls.append(line.removeprefix("dashboard: "))
    assert urls[0] == urls[1] and re.fullmatch(r"http://127\.0\.0\.1:\d+/", urls[0]), urls
    status, body, _ = get(urls[0] + "api/experiments")
    assert status == 200 and {e["name"] for e in json.loads(body)["experiments"]} == {"first", "second"}
