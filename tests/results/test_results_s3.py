"""show and export read experiment folders from object storage: a real S3 API (moto's server on loopback)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from s3_server import S3Server
from typer.testing import CliRunner

from raytuner.cli import app
from raytuner.execution.events import Recorder
from raytuner.execution.runner import RunOptions, run_experiment
from raytuner.spec.loader import load_experiment_text

pytestmark = [pytest.mark.ray, pytest.mark.slow]
runner = CliRunner()

QUADRATIC = """
name: quad
trainable: {function: "user_trainables:quadratic"}
metric: loss
mode: min
space: {x: {grid: [0.5, 1.5, 3.0]}}
search: {algorithm: grid}
execution: {loggers: [json]}
"""
RAYTUNER_FILES = {"spec.yaml", "environment.json", "status.json", "trials.parquet", "results.parquet"}


@pytest.fixture(scope="module")
def s3_endpoint(s3_server: S3Server) -> Iterator[str]:
    """The session's S3 server; readers find it through AWS_ENDPOINT_URL_S3, as users' tools do."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in s3_server.env.items():
            env.setenv(name, value)
        yield s3_server.endpoint


@pytest.fixture(scope="module")
def uploaded(ray_session: None, s3_server: S3Server, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished raytuner experiment, copied to s3://bucket/prefix/quad, and without raytuner's files
    (what Ray Tune alone writes, its JSON logger on) to s3://bucket/prefix/plain; returns the local original."""
    storage = tmp_path_factory.mktemp("runs")
    summary = run_experiment(load_experiment_text(QUADRATIC + f"\nstorage: {storage}\n"), RunOptions(), Recorder())
    s3 = s3_server.client()
    s3.create_dir("bucket")
    pafs.copy_files(
        str(summary.folder), "bucket/prefix/quad", source_filesystem=pafs.LocalFileSystem(), destination_filesystem=s3
    )
    assert s3.get_file_info("bucket/prefix/quad/results.parquet").type == pafs.FileType.File
    for path in summary.folder.rglob("*"):
        if path.is_file() and path.name not in RAYTUNER_FILES:
            with s3.open_output_stream(f"bucket/prefix/plain/{path.relative_to(summary.folder).as_posix()}") as out:
                out.write(path.read_bytes())
    return summary.folder


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout


def test_export_from_s3_to_a_local_file_matches_the_local_folder(uploaded: Path, tmp_path: Path) -> None:
    target = tmp_path / "quad.parquet"
    invoke("export", "s3://bucket/prefix/quad", "-f", "parquet", "-o", str(target))
    table = pq.read_table(target)
    local = pq.read_table(uploaded / "results.parquet")
    assert table.num_rows == 15  # 3 trials x 5 reports
    assert sorted(table.column("loss").to_pylist()) == sorted(local.column("loss").to_pylist())
    assert table.schema.metadata[b"raytuner.source"] == b"s3://bucket/prefix/quad"
    assert table.schema.metadata[b"raytuner.source_kind"] == b"raytuner"

    trials = tmp_path / "trials.parquet"
    invoke("export", "s3://bucket/prefix/quad/", "-t", "trials", "-o", str(trials), "-w", "config/x > 1")
    chosen = pq.read_table(trials)
    assert sorted(chosen.column("config/x").to_pylist()) == [1.5, 3.0]
    assert chosen.schema.field("config/x").type == pa.float64()


def test_show_and_compare_read_from_s3(uploaded: Path) -> None:
    rows = json.loads(invoke("show", "s3://bucket/prefix/quad", "--json", "-c", "trial_id,metric_best,config/x"))
    assert [r["config/x"] for r in rows][2] == 3.0  # best first: (x-1)^2 + 1/5, x=0.5 and x=1.5 tie
    assert rows[0]["metric_best"] == pytest.approx(0.25 + 0.2)
    table = invoke("show", "s3://bucket/prefix/quad")
    assert "3 of 3 trials" in table

    compared = json.loads(invoke("compare", str(uploaded), "s3://bucket/prefix/quad", "--json"))
    assert compared["left"]["best_value"] == compared["right"]["best_value"] == pytest.approx(0.45)
    assert compared["config"] == [] and compared["spec"] == []


def test_a_plain_ray_tune_folder_on_s3(uploaded: Path, tmp_path: Path) -> None:
    target = tmp_path / "plain-trials.parquet"
    invoke("export", "s3://bucket/prefix/plain", "-t", "trials", "-o", str(target), "--metric", "loss")  # raytuner gave Ray none
    trials = pq.read_table(target)
    assert trials.schema.metadata[b"raytuner.source_kind"] == b"ray-tune"
    assert sorted(trials.column("config/x").to_pylist()) == [0.5, 1.5, 3.0]
    assert sorted(trials.column("metric_best").to_pylist()) == pytest.approx([0.45, 0.45, 4.2])
    lines = invoke("export", "s3://bucket/prefix/plain", "-f", "jsonl", "-c", "trial_id,training_iteration,loss")
    assert len(lines.splitlines()) == 15


def test_an_endpoint_in_the_uri_and_a_missing_folder(uploaded: Path, s3_endpoint: str, tmp_path: Path) -> None:
    target = tmp_path / "by-query.parquet"
    address = s3_endpoint.removeprefix("http://")
    with pytest.MonkeyPatch.context() as env:
        env.delenv("AWS_ENDPOINT_URL_S3")
        invoke("export", f"s3://bucket/prefix/quad?endpoint_override={address}&scheme=http", "-o", str(target))
    assert pq.read_table(target).num_rows == 15
    assert os.environ["AWS_ENDPOINT_URL_S3"] == s3_endpoint

    missing = runner.invoke(app, ["show", "s3://bucket/prefix/nothing"])
    assert missing.exit_code == 2 and "no experiment folder at s3://bucket/prefix/nothing" in missing.stderr


def _objects(s3_server: S3Server, bucket: str, prefix: str, objects: dict[str, bytes]) -> None:
    """A new bucket holding ``objects`` (relative key -> content) under ``prefix``."""
    s3 = s3_server.client()
    s3.create_dir(bucket)
    for key, data in objects.items():
        with s3.open_output_stream(f"{bucket}/{prefix}/{key}") as out:
            out.write(data)


def test_a_working_copy_holds_the_result_parts_of_a_run_that_never_compacted(
    s3_server: S3Server, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver killed mid-run leaves results.parts/ in the bucket: the download keeps every part."""
    from raytuner.results import remote

    monkeypatch.setenv("RAYTUNER_CACHE", str(tmp_path / "cache"))
    _objects(s3_server, "parts-bucket", "runs/killed", {"spec.yaml": b"name: killed\n", "status.json": b"{}",
             "results.parts/part-000001.parquet": b"1", "results.parts/part-000002.parquet": b"2"})  # fmt: skip
    folder = remote.download(remote.Folder.parse("s3://parts-bucket/runs/killed"))
    assert sorted(p.name for p in (folder / "results.parts").iterdir()) == ["part-000001.parquet", "part-000002.parquet"]
    assert (folder / "results.parts" / "part-000002.parquet").read_bytes() == b"2"


def test_resume_and_extend_fetch_the_trackers_stores_and_readers_do_not(
    s3_server: S3Server, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from raytuner.results import remote
    from raytuner.results.reader import find_experiment

    monkeypatch.setenv("RAYTUNER_CACHE", str(tmp_path / "cache"))
    keys = ("spec.yaml", "status.json", "mlruns/1/meta.yaml", "mlruns/1/abc/metrics/loss", "wandb/offline-run-1/x.wandb")
    _objects(s3_server, "tracked-bucket", "runs/tracked", {key: key.encode() for key in keys})
    folder = find_experiment("tracked", "s3://tracked-bucket/runs")
    assert not (folder / "mlruns").exists() and not (folder / "wandb").exists()  # show, best, report: tables only
    folder = find_experiment("tracked", "s3://tracked-bucket/runs", to_continue=True)
    assert (folder / "mlruns" / "1" / "abc" / "metrics" / "loss").read_text() == "mlruns/1/abc/metrics/loss"
    assert (folder / "wandb" / "offline-run-1" / "x.wandb").is_file()
    assert remote.remote_of(folder) == remote.Folder.parse("s3://tracked-bucket/runs/tracked")


def test_the_last_upload_leaves_no_stale_parts_beside_the_compacted_table(
    s3_server: S3Server, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver killed while it closed left the bucket with results.parquet, an emptied
    results.parts/ and a stray part; the resume that adds no report compacts nothing, and its
    last upload still leaves only the tables. The status goes after the removals."""
    from raytuner.results import remote
    from raytuner.results.store import compact, seal_open_parts

    monkeypatch.setenv("RAYTUNER_CACHE", str(tmp_path / "cache"))
    table = pa.table({"trial_id": ["a"], "training_iteration": [1]})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    _objects(s3_server, "closing-bucket", "runs/done", {"spec.yaml": b"name: done\n", "status.json": b"{}",
             "results.parquet": sink.getvalue().to_pybytes(), "results.open/part-000003.jsonl": b"",
             "results.parts/part-000002.parquet": sink.getvalue().to_pybytes()})  # fmt: skip
    s3 = s3_server.client()
    s3.delete_file("closing-bucket/runs/done/results.parts/part-000002.parquet")  # pyarrow leaves the folder's marker
    s3.create_dir("closing-bucket/runs/done/results.parts/")
    bucket = remote.Folder.parse("s3://closing-bucket/runs/done")
    folder = remote.download(bucket)
    assert (folder / "results.parts").is_dir() and not any((folder / "results.parts").iterdir())
    seal_open_parts(folder)  # what the resumed store does first: the empty open part goes, its folder stays
    compact(folder)
    assert not (folder / "results.parts").exists() and not any((folder / "results.open").iterdir())

    (folder / "results.parts").mkdir()
    (folder / "results.parts" / "part-000004.parquet").write_bytes(b"4")
    with s3.open_output_stream("closing-bucket/runs/done/results.parts/part-000001.parquet") as out:
        out.write(b"stray")  # uploaded by the killed driver, never part of this working copy
    deleted: list[str] = []
    mirror = remote.Mirror(folder, bucket)
    put, delete = mirror._put, mirror._delete
    mirror._put = lambda relative, data: (deleted.append(f"put {relative}"), put(relative, data))[1]  # type: ignore[method-assign]
    mirror._delete = lambda relative: (deleted.append(f"delete {relative}"), delete(relative))[1]  # type: ignore[method-assign]
    mirror.close()
    names = {info.path.removeprefix("closing-bucket/runs/done/")
             for info in s3.get_file_info(pafs.FileSelector("closing-bucket/runs/done", recursive=True))}  # fmt: skip
    assert names == {"spec.yaml", "status.json", "results.parquet", "results.parts", "results.parts/part-000004.parquet"}
    assert deleted.index("delete results.parts/part-000001.parquet") < deleted.index("put status.json") == len(deleted) - 1

    (folder / "results.parts" / "part-000004.parquet").unlink()
    (folder / "results.parts").rmdir()
    mirror.sync()
    assert "results.parts" not in {info.base_name for info in s3.get_file_info(pafs.FileSelector("closing-bucket/runs/done"))}


def test_a_table_a_live_run_keeps_replacing_on_s3_reads_whole(s3_server: S3Server, s3_endpoint: str) -> None:
    """Seen in CI: ``raytuner best s3://...`` of a live run failed in pyarrow (``Parquet magic bytes
    not found``): the table was read in ranges (footer, then columns) while the run's upload
    replaced it with a table of another size."""
    import io
    import threading

    import pyarrow as pa
    import pyarrow.parquet as pq

    from raytuner.results.folder import Folder

    s3 = s3_server.client()
    s3.create_dir("live-table")
    versions = []
    for rows in (5, 400):
        sink = io.BytesIO()
        pq.write_table(pa.table({"trial_id": [f"t{i}" for i in range(rows)], "x": list(range(rows))}), sink)
        versions.append(sink.getvalue())
    path = "live-table/exp/trials.parquet"
    stop = threading.Event()

    def upload() -> None:
        i = 0
        while not stop.wait(0.1):  # a live run replaces its tables every few seconds: here much more often
            with s3.open_output_stream(path) as out:
                out.write(versions[i % 2])
            i += 1

    with s3.open_output_stream(path) as out:
        out.write(versions[0])
    writer = threading.Thread(target=upload, daemon=True)
    writer.start()
    try:
        folder = Folder.parse("s3://live-table/exp")
        for _ in range(100):
            assert folder.read_table("trials.parquet").num_rows in (5, 400)
    finally:
        stop.set()
        writer.join(timeout=30)
