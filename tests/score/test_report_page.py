"""The nightly report an operator reads: scored through the real S3 server with a real (tiny) model
whose calibration splits the night into flagged and normal videos, rendered by headless Debian
`chromium`, and checked on the screenshot and on the DOM chromium built."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tvau.score.config import ScoreConfig
from tvau.score.core import score_prefix
from tvau.score.model import check_calibration
from tvau.score.s3io import make_client
from tvau.score.summary import write_summary

pytestmark = pytest.mark.services
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--virtual-time-budget=5000"]
CFG = ScoreConfig(escalate_level=0.0, max_new_tokens=6, backoff_s=0.01, videos_per_batch=3)


def _chromium() -> str:
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(exe).exists(), "chromium is missing: run `make system-deps` (apt-get install chromium)"
    return exe


@pytest.fixture(scope="module")
def split_night(s3, night, model_dir, tmp_path_factory, loader, calibrate):
    """The night scored twice: a probe at the fixture's threshold gives the video scores, then the
    model's calibration is refitted between the two lowest and the highest, so that one video is
    normal and two are flagged; plus one quarantined file."""
    from tvau.storage import temporary_environ

    model = tmp_path_factory.mktemp("split") / "tvau"
    shutil.copytree(model_dir, model)
    with temporary_environ(s3):
        client = make_client(CFG)
        for v in night:
            client.put_object(Bucket="footage", Key=f"r1/{v.name}", Body=v.read_bytes())
        client.put_object(Bucket="footage", Key="r1/cut.mp4", Body=night[0].read_bytes()[:300])
        probe = score_prefix("s3://footage/r1/", "s3://results/r1probe", str(model),
                             CFG.model_copy(update={"escalate_level": 1.0}), loader=loader, client=client)
        scores = sorted(r.video_score for r in probe if r.status == "scored")
        calibrate(model, (scores[0] + scores[1]) / 2)
        res = score_prefix("s3://footage/r1/", "s3://results/r1", str(model), CFG, loader=loader, client=client)
        out = write_summary(client, res, "s3://results/r1", "2026-11-25", CFG,
                            local_dir=tmp_path_factory.mktemp("page"), calibration=check_calibration(str(model)))
        yield {"results": res, "summary": out, "client": client}


def test_flagged_first_with_spans_keyframes_sentences_and_links(split_night):
    res, out = split_night["results"], split_night["summary"]
    assert sorted(r.verdict for r in res if r.status == "scored") == ["anomalous", "anomalous", "normal"]
    page = Path(out["local_report"]).read_text()
    flagged_at, normal_at, bad_at = (page.index(h) for h in ("<h2>Flagged videos (2)", "<h2>Normal videos (1)",
                                                             "<h2>Quarantined and failed (1)"))
    assert flagged_at < normal_at < bad_at
    assert page.count("data:image/png;base64,") == 2  # a keyframe per flagged video, none for the normal one
    assert re.search(r"<details id='normal'><summary>1 videos below", page)  # collapsed
    assert page.count("class='spans'") == 2 and "truncated" in page
    rows = [r for r in out["rows"] if r["verdict"] == "anomalous"]
    for r in rows:
        assert r["explanation"] in page and r["threshold"] < r["video_score"]
        assert [s["start_s"] <= s["peak_s"] <= s["end_s"] for s in json.loads(r["spans"])] == \
            [True] * r["span_count"]
    # the links are relative to summary/<date>/ and reach the video's outputs in S3
    client = split_night["client"]
    for href in re.findall(r"href='([^']+)'", page):
        assert href.startswith("../../") and href.endswith(("overlay.mp4", "manifest.json"))
        from urllib.parse import unquote

        key = "r1/" + unquote(href.removeprefix("../../"))
        assert client.head_object(Bucket="results", Key=key)["ContentLength"] > 0


def test_report_screenshot_in_headless_chromium(split_night, tmp_path):
    page = Path(split_night["summary"]["local_report"])
    common = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "shot.png"
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1280,900", page.as_uri()], check=True,
                   capture_output=True, timeout=120)
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape == (900, 1280, 3) and img.std() > 20  # not blank
    # the flagged videos' red frames are on the first screen
    red = ((img[..., 0] > 180) & (img[..., 1] < 60) & (img[..., 2] < 60)).sum()
    assert red > 500, red
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    assert re.search(r'<body data-images="2"', dom)  # both keyframes decoded
    assert len(re.findall(r'<div class="video flagged">', dom)) == 2
    assert re.search(r'<details id="normal">', dom)  # closed: no "open" attribute


def test_summary_parquet_carries_the_verdict_and_the_fields(split_night):
    import io

    import pyarrow.parquet as pq

    from tvau.score.explain import FIELD_COLUMNS

    client = split_night["client"]
    body = client.get_object(Bucket="results", Key="r1/summary/2026-11-25/summary.parquet")["Body"].read()
    table = pq.read_table(io.BytesIO(body))
    df = table.to_pandas()
    assert set(FIELD_COLUMNS) <= set(df.columns) and {"verdict", "threshold", "spans", "answers"} <= set(df.columns)
    assert json.loads(table.schema.metadata[b"tvau.monitoring"])["videos"] == 3
    flagged = df[df.verdict == "anomalous"]
    assert all(json.loads(a) and len(json.loads(a)) == 4 for a in flagged.answers)  # the verbatim dialogue
    assert df[df.verdict == "normal"].answers.map(json.loads).tolist() == [[]]  # never asked


def test_a_model_without_calibration_is_refused(s3, model_dir, tmp_path, loader):
    from typer.testing import CliRunner

    from tvau.cli import app

    bare = tmp_path / "tvau"
    shutil.copytree(model_dir, bare)
    (bare / "calibration.json").unlink()
    res = CliRunner().invoke(app, ["score", "--input", "s3://footage/r1/", "--output", "s3://results/x",
                                   "--model", str(bare)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "no calibration.json" in lines[0] and "--calibration-out" in lines[0]
    # and the batch function, reached without the CLI, fails each video with the same reason
    from tvau.storage import temporary_environ

    with temporary_environ(s3):
        got = score_prefix("s3://footage/r1/", "s3://results/x", str(bare), CFG, loader=loader,
                           client=make_client(CFG))
    assert got and all(r.status == "failed" and "no calibration.json" in r.reason for r in got)
