"""`tvau metrics rbdc-tbdc` on files written here, including malformed ones."""

import json

import pytest
from typer.testing import CliRunner

from tvau.metrics.cli import app

runner = CliRunner()


def write(folder, name, text):
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)


@pytest.fixture
def files(tmp_path):
    # Video a: track 1 in frames 0-1; video b: track 4 in frame 0; video c: normal (no tracks file).
    write(tmp_path / "tracks", "a.txt", "track_id,frame,x1,y1,x2,y2\n1,0,0,0,9,9\n1,1,0,0,9,9\n")
    write(tmp_path / "tracks", "b.txt", "4, 0, 20, 20, 29, 29\n")
    # a: hit (0.9), duplicate (0.8), FP (0.7), hit (0.6); b: hit (0.3); c: FP (0.95).
    write(tmp_path / "dets", "a.txt", "0,0,0,9,9,0.9\n0,0,0,9,9,0.8\n0,50,50,59,59,0.7\n1,0,0,9,9,0.6\n")
    write(tmp_path / "dets", "b.txt", "\n# comment\n0,20.5,20,29,29,0.3\n")
    write(tmp_path / "dets", "c.txt", "3,1,1,5,5,0.95\n")
    return tmp_path


def test_rbdc_tbdc_json(files):
    r = runner.invoke(
        app,
        [
            "rbdc-tbdc",
            "--tracks",
            str(files / "tracks"),
            "--detections",
            str(files / "dets"),
            "--num-frames",
            "20",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    # Steps: .95 FP (fpr .05) | .9 hit 1/3 | .8 dup | .7 FP (.1) | .6 hit 2/3 | .3 hit 3/3.
    # RBDC: .05*0 + .05*(1/3) + .9 * 1 -> trapezoids (0,0)(.05,0)(.05,1/3)(.1,1/3)(.1,1)(1,1).
    assert out["rbdc"] == pytest.approx(0.05 / 3 + 0.9)
    # TBDC: track a detected at .9 (1/2 tracks), track b at .3.
    assert out["tbdc"] == pytest.approx(0.05 * 0.5 + 0.9)


def test_rbdc_tbdc_text_output(files):
    r = runner.invoke(
        app,
        [
            "rbdc-tbdc",
            "--tracks",
            str(files / "tracks"),
            "--detections",
            str(files / "dets"),
            "--num-frames",
            "20",
        ],
    )
    assert r.exit_code == 0 and "RBDC 0.9167" in r.stdout and "TBDC 0.9250" in r.stdout


@pytest.mark.parametrize(
    "folder, text, message",
    [
        ("dets", "0,0,0,9,9,0.9\n0,0,0,9\n", "b.txt:2: expected 6 fields"),
        ("dets", "0,0,0,9,9,high\n", "b.txt:1: not a number"),
        ("tracks", "1,0,0,0,9.5,9\n", "b.txt:1: track_id,frame,x1,y1,x2,y2 must be integers"),
        ("tracks", "1,0,9,0,3,9\n", "b.txt:1: box has x2 < x1"),
        ("dets", "-1,0,0,9,9,0.5\n", "b.txt:1: frame must be a non-negative integer"),
    ],
)
def test_malformed_rows_name_file_and_line(files, folder, text, message):
    (files / folder / "b.txt").write_text(text)
    r = runner.invoke(
        app,
        [
            "rbdc-tbdc",
            "--tracks",
            str(files / "tracks"),
            "--detections",
            str(files / "dets"),
            "--num-frames",
            "20",
            "--json",
        ],
    )
    assert r.exit_code == 2
    assert message in r.stderr and str(files / folder) in r.stderr


def test_missing_folder_is_a_clear_error(tmp_path):
    r = runner.invoke(
        app,
        ["rbdc-tbdc", "--tracks", str(tmp_path / "nope"), "--detections", str(tmp_path), "--num-frames", "5"],
    )
    assert r.exit_code == 2 and "tracks folder does not exist" in r.stderr


@pytest.fixture(scope="module")
def tiny_synth(tmp_path_factory):
    from tvau.synth.config import SynthConfig
    from tvau.synth.generate import generate

    out = tmp_path_factory.mktemp("synth") / "set"
    generate(out, SynthConfig(videos=6, size=64, frames=32), seed=3, workers=1, progress=False)
    return out


def test_evaluate_baseline_on_generated_footage(tiny_synth, tmp_path):
    out = tmp_path / "m" / "metrics.json"
    r = runner.invoke(app, ["evaluate-baseline", "--data", str(tiny_synth), "--split", "all", "--json",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)
    assert m["videos"] == 6 and m["frames"] == 6 * 32 and m["anomalous_frames"] > 0
    for key in ("micro_auc", "macro_auc", "pixel_auroc", "rbdc", "tbdc"):
        assert 0.0 <= m[key] <= 1.0, key
    assert json.loads(out.read_text()) == m


def test_evaluate_baseline_unknown_split_is_a_clear_error(tiny_synth):
    r = runner.invoke(app, ["evaluate-baseline", "--data", str(tiny_synth), "--split", "nope"])
    assert r.exit_code == 2 and "no videos in split 'nope'" in r.stderr
