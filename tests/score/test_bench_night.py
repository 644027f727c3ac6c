"""The night benchmark (benchmarks/bench_night.py) on a tiny night: its table must say what the
manifests it wrote say, measured against the synthetic ground truth. The expected figures are
recomputed here from the manifests read back from S3 and from the generator's own record
(synth_manifest.json), not from the benchmark's join, so a wrong join, a wrong ratio or a row
that reports another figure fails."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytestmark = pytest.mark.services


def _manifests(output_prefix: str, cfg) -> dict[str, dict]:
    """{video name: manifest} of every manifest.json under the output prefix."""
    from tvau.score.s3io import get_json, list_objects, make_client

    client = make_client(cfg)
    refs = [r for r in list_objects(client, output_prefix + "/", cfg) if r.key.endswith("/manifest.json")]
    out = {}
    for r in refs:
        m = get_json(client, r.uri, cfg)
        out[Path(m["input"]["key"]).stem] = m
    return out


def _ground_truth(root: Path) -> dict[str, dict]:
    """{video name: {"anomalous", "kind"}} from the generator's record of what it rendered."""
    record = json.loads((root / "synth_manifest.json").read_text())
    return {v["name"]: {"anomalous": v["anomalous_frames"] > 0, "kind": v["kind"]} for v in record["videos"]}


def _iou(manifest: dict, labels) -> float:
    true = {i for i, y in enumerate(labels) if y}
    pred = {f for sp in manifest["summary"]["spans"] for f in range(sp["start_frame"], sp["end_frame"] + 1)}
    pred &= set(range(len(labels)))
    return len(pred & true) / len(pred | true)


def _value(rows, name: str) -> float:
    hits = [r.value for r in rows if r.benchmark == f"night: {name}"]
    assert len(hits) == 1, [r.benchmark for r in rows]
    return hits[0]


def _close(got: float, want: float | None) -> bool:
    return math.isnan(got) if want is None else math.isclose(got, 100 * want, abs_tol=1e-9)


@pytest.fixture(scope="module")
def night(tmp_path_factory, model_dir, s3):
    """One tiny night through the benchmark (4 videos, 64 px, 24 frames), the dialogue cut short."""
    import os

    from benchmarks.bench_night import measure
    from tvau.evaluate.config import EvaluateConfig
    from tvau.score.config import ScoreConfig
    from tvau.storage import temporary_environ

    work = tmp_path_factory.mktemp("bench-night")
    cfg = ScoreConfig(model_uri=str(model_dir), max_new_tokens=4, backoff_s=0.01)
    ev = EvaluateConfig(bootstrap=200)
    with temporary_environ(s3):
        assert os.environ["AWS_ENDPOINT_URL"] == s3["AWS_ENDPOINT_URL"]
        result = measure(work, str(model_dir), videos=4, seed=2024, frames=24, size=64, cfg=cfg, ev=ev)
        manifests = _manifests(result.output_prefix, cfg)
    return result, manifests, work / "night"


def test_table_agrees_with_manifests_and_truth(night):
    from tvau.data import open_dataset

    result, manifests, root = night
    gt = _ground_truth(root)
    assert set(manifests) == set(gt), "every rendered video has a manifest"
    flagged = {v: m["summary"]["verdict"] == "anomalous" for v, m in manifests.items()}
    anomalous = [v for v in gt if gt[v]["anomalous"]]
    normal = [v for v in gt if not gt[v]["anomalous"]]
    assert anomalous and normal
    rows = result.rows
    assert _value(rows, "videos scored") == len(gt)
    assert _close(_value(rows, "video recall"), sum(flagged[v] for v in anomalous) / len(anomalous))
    assert _close(_value(rows, "video false-alarm rate"), sum(flagged[v] for v in normal) / len(normal))
    for kind in {gt[v]["kind"] for v in anomalous}:
        of_kind = [v for v in anomalous if gt[v]["kind"] == kind]
        assert _close(_value(rows, f"recall, {kind}"), sum(flagged[v] for v in of_kind) / len(of_kind))
    labels = {r.name: r.frame_labels for r in open_dataset(root, "ubnormal", load_tracks=False)}
    ious = {v: _iou(manifests[v], labels[v]) for v in anomalous}
    assert _close(_value(rows, "span temporal IoU"), sum(ious.values()) / len(ious))
    found = [ious[v] for v in anomalous if flagged[v]]
    assert _close(_value(rows, "span temporal IoU, flagged only"), sum(found) / len(found) if found else None)
    clips = sum(m["summary"]["clips"] for m in manifests.values())
    asked = sum(m["summary"]["escalated_clips"] for m in manifests.values())
    assert _close(_value(rows, "clips sent to the language model"), asked / clips)
    assert (result.summary["clips"], result.summary["escalated_clips"]) == (clips, asked)


def test_every_interval_holds_its_value(night):
    result, _, _ = night
    fig = result.figures
    ivs = [fig[k] for k in ("recall", "false_alarm_rate", "iou", "iou_flagged", "escalation")]
    ivs += [iv for iv, _ in fig["kinds"].values()]
    for iv in ivs:
        if iv.value is not None and iv.low is not None:
            assert iv.low <= iv.value + 1e-12 and iv.value <= iv.high + 1e-12, iv


def test_figures_on_a_known_night():
    """figures() on hand-made rows: 3 of 4 anomalous flagged, 1 of 4 normal, a failed video left out."""
    from benchmarks.bench_night import figures

    def row(anomalous, flagged, kind=None, iou=None, status="scored"):
        return {"video": "v", "kind": kind, "anomalous": anomalous, "flagged": flagged, "iou": iou,
                "status": status, "clips": 4, "escalated": int(flagged)}

    rows = [row(True, True, "running", 0.5), row(True, True, "running", 1.0), row(True, False, "running", 0.0),
            row(True, True, "fighting", 0.25), row(False, True), row(False, False), row(False, False),
            row(False, False), row(True, False, "fighting", 0.0, status="failed")]
    fig = figures(rows, 200, 0, 0.95)
    assert (fig["videos"], fig["anomalous"], fig["normal"], fig["not_scored"]) == (8, 4, 4, 1)
    assert fig["recall"].value == 0.75 and fig["false_alarm_rate"].value == 0.25
    assert fig["kinds"]["running"][0].value == pytest.approx(2 / 3) and fig["kinds"]["fighting"][0].value == 1.0
    assert fig["iou"].value == pytest.approx(1.75 / 4) and fig["iou_flagged"].value == pytest.approx(1.75 / 3)
    assert fig["escalation"].value == pytest.approx(4 / 32)
    assert fig["recall"].low < 0.75 < fig["recall"].high


def test_refuses_a_seed_the_pipeline_uses():
    from benchmarks.bench_night import PARAMS, check_unseen
    from tvau.config import load_params

    p = load_params(PARAMS)
    for seed in (p.seed, p.evaluate.holdout_seed, p.pretrain.world.seed):
        with pytest.raises(ValueError, match="unseen"):
            check_unseen(seed, p)
    check_unseen(2024, p)


def test_results_are_never_overwritten(tmp_path):
    from benchmarks.bench_night import write_markdown

    first = write_markdown("a\n", tmp_path, "2026-01-02")
    second = write_markdown("b\n", tmp_path, "2026-01-02")
    assert (first.name, second.name) == ("night_cpu_2026-01-02.md", "night_cpu_2026-01-02b.md")
    assert first.read_text() == "a\n"
