"""The Prefect flow and `tvau score` against the real S3 server: batches as tasks, the nightly summary
(Parquet + HTML + a Prefect artifact), a rerun that writes nothing, and the same flow fanned out
over a real Dask LocalCluster on loopback."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tvau.score.config import ScoreConfig
from tvau.score.s3io import make_client

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    import os

    os.environ.setdefault("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect-home")))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def params_file(tmp_path, model_dir):
    """params.yaml with the fast cascade (level 1.0: no dialogue) and this test's model."""
    import yaml

    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"score": {
        "model_uri": str(model_dir), "escalate_level": 1.0, "videos_per_batch": 1, "backoff_s": 0.01}}))
    return tmp_path / "params.yaml"


def _renders_in_chromium(page, images: int) -> None:
    """Open the page in Debian's headless chromium and count the pictures that decoded."""
    import re
    import shutil
    import subprocess

    exe = shutil.which("chromium") or "/usr/bin/chromium"
    res = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                          "--dump-dom", page.resolve().as_uri()], capture_output=True, text=True, timeout=120,
                         check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    m = re.search(r'<body data-images="(\d+)"', res.stdout)
    assert m and int(m.group(1)) == images, res.stdout[:500]
    assert "Nightly scoring" in res.stdout


def _upload(client, night, prefix):
    client.put_object(Bucket="footage", Key=f"{prefix}/broken.mp4", Body=b"\x00\x00\x00\x18ftypisom" + b"\x00" * 40)
    for v in night:
        client.put_object(Bucket="footage", Key=f"{prefix}/{v.name}", Body=v.read_bytes())


def test_flow_scores_a_night_and_publishes_the_summary(prefect_api, s3_vars, night, model_dir, loader, params_file,
                                                       tmp_path):
    from prefect.client.orchestration import get_client

    from flows.score import run

    client = make_client(ScoreConfig())
    _upload(client, night, "f1")
    out = run("s3://footage/f1/", "s3://results/f1", concurrency=2, run_date="2026-11-25",
              params_path=str(params_file), report_dir=str(tmp_path / "report"), loader=loader)
    assert out["counts"] == {"scored": 3, "skipped": 0, "quarantined": 1, "failed": 0}
    table = pq.read_table(io.BytesIO(client.get_object(Bucket="results", Key="f1/summary/2026-11-25/summary.parquet")
                                     ["Body"].read())).to_pandas()
    scored = table[table.status == "scored"]
    assert list(scored.video_score) == sorted(scored.video_score, reverse=True) and len(scored) == 3
    assert set(scored.verdict) == {"anomalous"} and (scored.video_score > scored.threshold).all()  # threshold 0.5
    assert table[table.status == "quarantined"].reason.tolist() == ["truncated"]
    page = client.get_object(Bucket="results", Key="f1/summary/2026-11-25/report.html")["Body"].read().decode()
    assert page.count("data:image/png;base64,") == 3 and all(v.name in page for v in night)
    assert (tmp_path / "report" / "report.html").read_text() == page
    _renders_in_chromium(tmp_path / "report" / "report.html", images=3)
    with get_client(sync_client=True) as pc:
        art = pc.read_latest_artifacts()
    mine = [a for a in art if a.key == "score-night-2026-11-25"]
    assert mine and "f1/summary/2026-11-25/report.html" in mine[0].data and "truncated" in mine[0].data
    assert "**3 of 3 videos flagged anomalous.**" in mine[0].data and "too few to judge" in mine[0].data

    again = run("s3://footage/f1/", "s3://results/f1", run_date="2026-11-25", params_path=str(params_file),
                loader=loader)
    assert again["counts"] == {"scored": 0, "skipped": 3, "quarantined": 1, "failed": 0}
    assert again["writes"] == 0  # the summary is the same, byte for byte: not written again


def test_cli_exit_status_and_json(prefect_api, s3_vars, night, model_dir, params_file):
    from tvau.cli import app

    client = make_client(ScoreConfig())
    _upload(client, night[:1], "c1")
    runner = CliRunner()
    res = runner.invoke(app, ["score", "--input", "s3://footage/c1/", "--output", "s3://results/c1", "--model",
                              str(model_dir), "--params", str(params_file), "--run-date", "2026-11-26", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["counts"]["scored"] == 1 and out["counts"]["quarantined"] == 1 and out["failed"] == []
    assert out["report"] == "s3://results/c1/summary/2026-11-26/report.html"
    bad = runner.invoke(app, ["score", "--input", "footage/c1", "--output", "s3://results/c1"])
    assert bad.exit_code == 2 and "expected an s3://bucket/prefix URI" in bad.stderr
    missing = runner.invoke(app, ["score", "--input", "s3://footage/c1/", "--output", "s3://results/c1",
                                  "--model", "/nonexistent/model"])
    assert missing.exit_code == 2 and "no such trained-model directory" in missing.stderr


def test_flow_fans_batches_out_over_a_dask_cluster(prefect_api, s3_vars, night, model_dir, loader, params_file):
    from flows.score import run

    client = make_client(ScoreConfig())
    _upload(client, night, "d1")
    out = run("s3://footage/d1/", "s3://results/d1", run_date="2026-11-27", params_path=str(params_file),
              dask_workers=2, loader=loader)
    assert out["counts"] == {"scored": 3, "skipped": 0, "quarantined": 1, "failed": 0}
    keys = {o["Key"] for o in client.list_objects_v2(Bucket="results", Prefix="d1/")["Contents"]}
    assert {f"d1/d1/{v.name}/manifest.json" for v in night} <= keys


def test_nightly_deployment_with_a_cron_schedule_and_a_model_slot_limit(prefect_api):
    from prefect.client.orchestration import get_client

    from flows.score import DEFAULT_CRON, MODEL_LIMIT, deploy

    dep_id = deploy("s3://footage/{date}/", "s3://results/nightly", model_slots=2)
    deploy("s3://footage/{date}/", "s3://results/nightly", model_slots=2)  # idempotent
    with get_client(sync_client=True) as pc:
        dep = pc.read_deployment(dep_id)
        limit = pc.read_global_concurrency_limit_by_name(MODEL_LIMIT)
    assert [s.schedule.cron for s in dep.schedules] == [DEFAULT_CRON]
    assert dep.parameters["input_prefix"] == "s3://footage/{date}/"
    assert limit.limit == 2
