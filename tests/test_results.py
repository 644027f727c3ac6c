"""docs/results.md is rendered from data/metrics by `python -m tvau.results`, never typed by hand."""

from __future__ import annotations

import json
from pathlib import Path

from tvau.results import COMMAND, main, render

REPO = Path(__file__).resolve().parents[1]


def stat(value, low=None, high=None):
    return {"value": value, "low": low, "high": high}


def write_metrics(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    evaluate = {
        "split": "validation",
        "videos": 4,
        "frames": 384,
        "model": {"micro_auc": stat(0.9123, 0.8511, 0.9702), "yes_no_accuracy": stat(0.75, 0.5, 1.0)},
        "baseline": {"micro_auc": stat(0.6431, 0.5012, 0.7788), "yes_no_accuracy": stat(None)},
        "majority_yes_no": 0.5,
        "per_kind": {
            "running": {
                "model": {"auc": stat(0.987, 0.97, 0.999)},
                "baseline": {"auc": stat(0.7, 0.6, 0.8)},
                "videos": 2,
                "dialogue": {"asked": 6, "yes": 5, "yes_rate": 5 / 6},
            }
        },
        "region_method": "motion",
        "details": {"dialogue_clips": 12, "normal_dialogue": {"asked": 6, "yes": 1}},
        "notes": ["a note on the split"],
        "holdout": {
            "videos": 3,
            "frames": 288,
            "seed": 1001,
            "model": {"micro_auc": stat(0.8642, 0.8001, 0.9213)},
            "baseline": {"micro_auc": stat(0.6718, 0.6002, 0.7304)},
            "notes": [],
        },
    }
    (folder / "evaluate.json").write_text(json.dumps(evaluate))
    (folder / "pretrain_backbone.json").write_text(
        json.dumps({"stage": "pretrain_backbone", "steps": 20000, "holdout_object_action_accuracy": 0.874})
    )
    (folder / "synth.json").write_text(json.dumps({"stage": "synthesise", "videos": 210, "codec": "libx264"}))
    (folder / "validate.json").write_text(json.dumps({"passed": True, "rows": {"videos": 210}}))
    return folder


def test_render_shows_the_figures(tmp_path):
    text = render(write_metrics(tmp_path / "metrics"), label="data/metrics")
    assert "| frame micro-AUC | 0.912 [0.851, 0.970] | 0.643 [0.501, 0.779] |" in text
    assert "| yes/no accuracy | 0.750 [0.500, 1.000] | n/a |" in text
    assert "| running | 2 | 0.987 [0.970, 0.999] | 0.700 [0.600, 0.800] | 5 of 6 |" in text
    assert "Seed 1001: 3 videos, 288 frames" in text
    assert "| frame micro-AUC | 0.864 [0.800, 0.921] | 0.672 [0.600, 0.730] |" in text
    assert "| normal_dialogue.asked | 6 |" in text
    assert "- a note on the split" in text
    assert "| steps | 20,000 |" in text and "| holdout_object_action_accuracy | 0.8740 |" in text
    assert "| codec | `libx264` |" in text and "| rows.videos | 210 |" in text and "| passed | yes |" in text
    # Files that are not there are named, one line each; the rest of the page is still there.
    for stem in ("annotate", "timelines", "refine", "build"):
        assert f"`data/metrics/{stem}.json` is absent." in text
    assert tmp_path.as_posix() not in text  # nothing of where it ran


def test_render_is_deterministic_and_survives_an_empty_folder(tmp_path):
    folder = write_metrics(tmp_path / "metrics")
    assert render(folder) == render(folder)
    empty = render(tmp_path / "none", label="m")
    assert "`m/evaluate.json` is absent." in empty and "`m/pretrain_backbone.json` is absent." in empty


def test_main_writes_and_checks(tmp_path, capsys):
    folder = write_metrics(tmp_path / "metrics")
    out = tmp_path / "docs" / "results.md"
    assert main(["--metrics", str(folder), "--out", str(out)]) == 0
    assert out.read_text() == render(folder, label=str(folder))
    assert main(["--metrics", str(folder), "--out", str(out), "--check"]) == 0
    out.write_text(out.read_text() + "edited by hand\n")
    assert main(["--metrics", str(folder), "--out", str(out), "--check"]) == 1
    assert COMMAND in capsys.readouterr().err


def test_docs_results_matches_the_metrics():
    page = REPO / "docs" / "results.md"
    expected = render(REPO / "data" / "metrics", label="data/metrics")
    assert page.is_file() and page.read_text() == expected, (
        f"docs/results.md no longer matches data/metrics/*.json: run `{COMMAND}` and commit the page"
    )
