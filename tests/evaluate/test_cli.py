"""`tvau evaluate --model models:/...`: the entry point downloads the model through the registry and
hands evaluation a directory (the model layer loads directories only: tests/test_layers.py)."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]


def test_a_registry_uri_is_downloaded_before_evaluation_sees_it(monkeypatch, tmp_path):
    from tvau.cli import app
    from tvau.evaluate import run
    from tvau.registry import resolve

    downloaded, evaluated = tmp_path / "downloaded", []
    monkeypatch.setattr(resolve, "download_model", lambda uri: downloaded if uri == "models:/tvau@champion" else None)

    def fake_run_evaluation(model_ref, *args, **kwargs):
        evaluated.append(model_ref)
        raise ValueError("stop after the hand-over")

    monkeypatch.setattr(run, "run_evaluation", fake_run_evaluation)
    result = CliRunner().invoke(app, ["evaluate", "--model", "models:/tvau@champion", "--data", str(tmp_path),
                                      "--params", str(REPO / "params.yaml")])
    assert result.exit_code == 2 and "stop after the hand-over" in result.output, result.output
    assert evaluated == [str(downloaded)]


def test_load_trained_refuses_a_registry_uri_and_names_the_resolver():
    from tvau.model.trained import TrainedModelError, load_trained

    with pytest.raises(TrainedModelError, match="models:/tvau@champion: a registry URI; download it first"):
        load_trained("models:/tvau@champion")
