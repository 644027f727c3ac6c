"""Registration, aliases, promotion history and rollback against a real MLflow store (SQLite +
local artifacts in tmp). The registered model directories hold untrained weights: these tests are
about the registry path, not model quality."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.registry.helpers import eval_report, write_model_dir
from tvau.registry import models
from tvau.registry.gates import check_gates
from tvau.registry.policy import load_policy
from tvau.registry.pyfunc import log_pyfunc
from tvau.registry.tracking import PipelineRun

REPO = Path(__file__).resolve().parents[2]


def _candidate(store, model_dir, tmp_path, report: dict):
    """Log + register one candidate the way the retrain flow does; returns the ModelVersion."""
    policy = load_policy(REPO / "registry" / "policy.yaml")
    gates = check_gates(report, policy, models.champion_metrics(store.model_name))
    run = PipelineRun.start(store, tmp_path, name="test")
    uri = log_pyfunc(model_dir, run.run_id)
    mv = models.register_candidate(uri, gates, {k: v["value"] for k, v in report["model"].items()},
                                   store.model_name, pipeline_run=run.run_id)
    run.finish()
    return mv


def test_failing_candidate_is_registered_tagged_and_never_promoted(store, model_dir, tmp_path):
    mv = _candidate(store, model_dir, tmp_path, eval_report(micro_auc=0.7, rbdc=0.5))
    assert mv.tags["gates"] == "failed"
    assert {"gate_failed.min.micro_auc", "gate_failed.beats_baseline.rbdc"} <= set(mv.tags)
    assert not mv.aliases
    with pytest.raises(models.RegistryError, match="did not pass its gates.*min.micro_auc"):
        models.promote("tvau", mv.version, why="try")
    assert models.version_by_alias("tvau", models.CHAMPION) is None
    assert models.history("tvau") == []


def test_alias_moves_history_and_rollback(store, model_dir, tmp_path):
    v1 = _candidate(store, model_dir, tmp_path, eval_report())
    assert v1.aliases == ["challenger"]
    e1 = models.promote("tvau", v1.version, who="alice", why="first model")
    assert e1["previous"] is None
    champ = models.version_by_alias("tvau", "champion")
    assert champ.version == v1.version
    assert models.version_by_alias("tvau", "challenger") is None  # the challenger became champion
    assert champ.tags["promoted_by"] == "alice" and champ.tags["replaced_version"] == "none"

    v2 = _candidate(store, model_dir, tmp_path, eval_report(model=0.98))
    assert models.version_by_alias("tvau", "challenger").version == v2.version
    models.promote("tvau", v2.version, who="bob", why="better on rbdc")
    assert models.version_by_alias("tvau", "champion").version == v2.version
    v2_now = models._client().get_model_version("tvau", v2.version)
    assert v2_now.tags["replaced_version"] == str(v1.version)
    assert models._client().get_model_version("tvau", v1.version).tags["replaced_by"] == str(v2.version)

    back = models.rollback("tvau", who="carol", why="alerts on camera 7")
    assert back["action"] == "rollback" and back["version"] == str(v1.version) and back["previous"] == str(v2.version)
    assert models.version_by_alias("tvau", "champion").version == v1.version
    h = models.history("tvau")
    assert [(e["action"], e["version"], e["previous"], e["who"]) for e in h] == [
        ("promote", str(v1.version), None, "alice"),
        ("promote", str(v2.version), str(v1.version), "bob"),
        ("rollback", str(v1.version), str(v2.version), "carol"),
    ]
    assert all(e["when"] for e in h)
    # the champion's metrics feed the next candidate's "no worse than champion" gate
    assert models.champion_metrics("tvau")["micro_auc"] == pytest.approx(0.97)


def test_registry_cli(store, model_dir, tmp_path, monkeypatch):
    from tvau.cli import app

    good = _candidate(store, model_dir, tmp_path, eval_report())
    bad = _candidate(store, model_dir, tmp_path, eval_report(pixel_auroc=0.5))
    params = tmp_path / "params.yaml"
    params.write_text(f"registry:\n  store_dir: {tmp_path / 'mlflow'}\n")
    runner = CliRunner()
    r = runner.invoke(app, ["registry", "promote", str(bad.version), "--why", "x", "--params", str(params)])
    assert r.exit_code == 2 and "did not pass its gates" in r.stderr and "Traceback" not in r.output
    r = runner.invoke(app, ["registry", "promote", str(good.version), "--why", "ship it", "--who", "dana",
                            "--params", str(params)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["registry", "list", "--json", "--params", str(params)])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    by_version = {v["version"]: v for v in out["versions"]}
    assert by_version[str(good.version)]["aliases"] == ["champion"]
    assert by_version[str(bad.version)]["gates"] == "failed"
    assert "min.pixel_auroc" in by_version[str(bad.version)]["failed_gates"]
    assert out["history"][0]["who"] == "dana" and out["history"][0]["why"] == "ship it"
    r = runner.invoke(app, ["registry", "rollback", "--params", str(params)])
    assert r.exit_code == 2 and "replaced no earlier champion" in r.stderr


def test_registration_is_idempotent_on_adapters_data_code_and_evaluation(store, model_dir, tiny_cache, tmp_path):
    """A second pipeline run with the same adapters, dvc.lock outputs, code and evaluation reuses the
    version (no new version, no second upload, the run says which); any one of them changed, or a
    changed verdict, registers a new version."""
    import shutil

    import yaml

    from tvau.registry import pipeline

    root = tmp_path / "repo"
    shutil.copytree(model_dir, root / "data" / "models" / "tvau")
    (root / "data" / "metrics").mkdir(parents=True)
    report = eval_report()
    (root / "data" / "metrics" / "evaluate.json").write_text(json.dumps(report))
    lock = {"schema": "2.0", "stages": {"synthesise": {"cmd": "x", "outs": [
        {"path": "data/synth", "md5": "0123456789abcdef0123456789abcdef.dir", "size": 10, "nfiles": 2}]}}}
    (root / "dvc.lock").write_text(yaml.safe_dump(lock))
    params = {"registry": {"eval_json": "data/metrics/evaluate.json"}, "seed": 0}
    policy = load_policy(REPO / "registry" / "policy.yaml")

    def run_once(rep: dict):
        gates = check_gates(rep, policy, None)
        run = PipelineRun.start(store, root, name="retrain")
        mv, reused = pipeline.register_or_reuse(run, root, params, "data/models/tvau", rep, gates, "tvau", 0)
        run.finish()
        return mv, reused, run

    v1, reused, _ = run_once(report)
    assert not reused and v1.tags[models.KEY_TAG] and v1.tags["tvau.adapters_digest"]
    v1b, reused, run = run_once(report)
    assert reused and v1b.version == v1.version
    assert [r.version for r in models.list_versions("tvau")] == [str(v1.version)]
    assert models._client().get_run(run.run_id).data.tags["tvau.reused_version"] == str(v1.version)

    lock["stages"]["synthesise"]["outs"][0]["md5"] = "f" * 32 + ".dir"  # other data
    (root / "dvc.lock").write_text(yaml.safe_dump(lock))
    v2, reused, _ = run_once(report)
    assert not reused and int(v2.version) == int(v1.version) + 1
    assert v2.tags["tvau.data_digest"] != v1.tags["tvau.data_digest"]
    assert v2.tags["tvau.adapters_digest"] == v1.tags["tvau.adapters_digest"]

    write_model_dir(root / "data" / "models" / "tvau", tiny_cache, seed=1)  # other adapters
    v3, reused, _ = run_once(report)
    assert not reused and v3.tags["tvau.adapters_digest"] != v2.tags["tvau.adapters_digest"]
    assert run_once(report)[1]  # and that one is reused in turn
    assert len(models.list_versions("tvau")) == 3
