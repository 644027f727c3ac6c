"""The retrain flow on a tiny configuration, under a real (temporary) Prefect server.

The data stages are real `dvc repro` runs of a two-stage DVC pipeline in a tmp git repository. The
"train_rae" and "evaluate" stages are replaced by commands that put a trained-model directory
(untrained weights, made by TVAU.save_adapters) and an evaluate.json of the contract's shape in
place: this tests the flow's wiring and the real gate -> register -> promote path, not training or
model quality (the DVC training stages are tested on their own).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.registry.helpers import eval_report
from tvau.registry.pipeline import StageFailed, StageSpec, run_stage

REPO = Path(__file__).resolve().parents[2]

FOOTAGE = """\
import sys
from pathlib import Path
import numpy as np
from tvau.video import VideoWriter
out = Path(sys.argv[1]) / "Scene1"
out.mkdir(parents=True, exist_ok=True)
with VideoWriter(out / "video_0.mp4", 8.0, 32, 32) as w:
    for t in range(4):
        w.write(np.full((32, 32, 3), 50 * t, np.uint8))
"""
CHECK = """\
import json, sys
from pathlib import Path
videos = sorted(Path("data/synth").rglob("*.mp4"))
Path("data/metrics").mkdir(parents=True, exist_ok=True)
Path("data/metrics/validate.json").write_text(json.dumps({"videos": len(videos)}))
sys.exit(0 if videos else 1)
"""


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _repo(root: Path, store_dir: Path) -> Path:
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    root.mkdir()
    (root / "make_footage.py").write_text(FOOTAGE)
    (root / "check.py").write_text(CHECK)
    (root / "registry").mkdir()
    (root / "registry" / "policy.yaml").write_text((REPO / "registry" / "policy.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump({"seed": 0, "registry": {"store_dir": str(store_dir)}}))
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "synthesise": {"cmd": "python make_footage.py data/synth", "deps": ["make_footage.py"],
                       "params": ["seed"], "outs": ["data/synth"]},
        "validate": {"cmd": "python check.py", "deps": ["data/synth", "check.py"],
                     "metrics": [{"data/metrics/validate.json": {"cache": False}}]},
    }}))
    for cmd in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=root, check=True, capture_output=True, env=env)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "init"], cwd=root,
                   check=True, capture_output=True)
    return root


def _stages(model_dir: Path, eval_json: Path) -> list[StageSpec]:
    return [
        StageSpec("data", ["dvc", "repro", "synthesise"]),
        StageSpec("quality", ["dvc", "repro", "validate"], ["data/metrics/validate.json"]),
        StageSpec("train_rae", [sys.executable, "-c", ("import shutil, sys; shutil.copytree(*sys.argv[1:], "
                                "dirs_exist_ok=True)"), str(model_dir), "data/models/tvau"]),
        StageSpec("evaluate", ["cp", str(eval_json), "data/metrics/evaluate.json"]),
    ]


def test_run_stage_failure_names_the_stage_and_carries_the_quality_report(tmp_path):
    (tmp_path / "data" / "quality").mkdir(parents=True)
    (tmp_path / "data" / "quality" / "report.md").write_text("| videos | expected >= 1 | got 0 |\n")
    with pytest.raises(StageFailed, match=r"(?s)stage quality: .* exited 3.*got 0"):
        run_stage(StageSpec("quality", [sys.executable, "-c", "import sys; sys.exit(3)"]), tmp_path)
    ok = run_stage(StageSpec("x", [sys.executable, "-c", "print('hello')"]), tmp_path)
    assert ok.output_tail.strip() == "hello" and ok.seconds > 0


@pytest.mark.slow
@pytest.mark.services
def test_retrain_flow_promotes_a_passing_candidate_and_fails_on_a_failing_one(
        prefect_server, model_dir, store, tmp_path):
    from prefect.client.orchestration import get_client

    from flows.retrain import retrain
    from tvau.registry import models

    root = _repo(tmp_path / "repo", tmp_path / "mlflow")
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(eval_report()))
    bad.write_text(json.dumps(eval_report(micro_auc=0.6)))

    s1 = retrain(root=str(root), stages=_stages(model_dir, good))
    assert s1["status"] == "COMPLETED" and s1["promoted"] and s1["gates"]["passed"]
    assert s1["champion_before"] is None and s1["champion_after"] == s1["model_version"]
    assert [s["name"] for s in s1["stages"]] == ["data", "quality", "train_rae", "evaluate"]
    assert models.version_by_alias("tvau", "champion").version == int(s1["model_version"])
    # the gate report and the metrics table are artifacts of the flow run, linking the MLflow run
    import anyio

    async def artifacts(flow_run_id):
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        async with get_client() as c:
            return await c.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))

    arts = {a.key: a for a in anyio.run(artifacts, s1["flow_run_id"])}
    assert {"gate-report", "model-vs-baseline", "mlflow-run", "stage-times"} <= set(arts)
    assert s1["mlflow_run_id"] in arts["gate-report"].data and "PASSED" in arts["gate-report"].data
    # MLflow: a parent run with a child per stage and the DVC datasets as inputs
    from tvau.registry.tracking import client

    c = client()
    parent = c.get_run(s1["mlflow_run_id"])
    children = c.search_runs([parent.info.experiment_id],
                             filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(r.data.tags["tvau.stage"] for r in children) == ["data", "evaluate", "quality", "train_rae"]
    quality = next(r for r in children if r.data.tags["tvau.stage"] == "quality")
    assert quality.data.metrics["validate.videos"] == 1.0
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    expected = {o["path"]: o["md5"] for st in lock["stages"].values() for o in st["outs"]}
    assert "data/synth" in expected
    assert {d.dataset.name: d.dataset.digest for d in parent.inputs.dataset_inputs} == expected

    state = retrain(root=str(root), stages=_stages(model_dir, bad), return_state=True)
    assert state.is_failed()
    assert "min.micro_auc" in state.message or "min.micro_auc" in str(state.result(raise_on_failure=False))
    rows = {r.version: r for r in models.list_versions("tvau")}
    assert rows["2"].gates == "failed" and "min.micro_auc" in rows["2"].failed_gates and not rows["2"].aliases
    assert models.version_by_alias("tvau", "champion").version == int(s1["model_version"])
    summaries = sorted((root / ".tvau" / "runs").glob("*/summary.json"), key=lambda p: p.stat().st_mtime)
    last = json.loads(summaries[-1].read_text())
    assert last["status"] == "FAILED" and last["model_version"] == "2" and not last["promoted"]


@pytest.mark.services
def test_prefect_yaml_deployments_register_with_their_schedule(prefect_server):
    """Each deployment of prefect.yaml names its flow (retraining or nightly scoring), passes
    parameters the flow accepts, and registers (with its cron schedule) in a Prefect server. (The
    stack's integration test registers them with `prefect deploy` and runs them.)"""
    import anyio
    from prefect.client.orchestration import get_client
    from prefect.flows import load_flow_from_entrypoint

    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    names = []
    for dep in spec["deployments"]:
        flow = load_flow_from_entrypoint(str(REPO / dep["entrypoint"]))
        assert flow.name in ("tvau-retrain", "score-night")
        flow.validate_parameters(dep["parameters"])  # raises on an unknown or ill-typed parameter
        cron = [s["cron"] for s in dep.get("schedules") or []]
        flow.to_deployment(name=dep["name"], cron=cron[0] if cron else None, parameters=dep["parameters"]).apply()
        names.append((f"{flow.name}/{dep['name']}", cron))

    async def read(name):
        async with get_client() as c:
            return await c.read_deployment_by_name(name)

    for name, cron in names:
        d = anyio.run(read, name)
        assert [s.schedule.cron for s in d.schedules] == cron
    from flows.retrain import CRON
    from flows.score import DEFAULT_CRON

    # flow.serve / flows.score.deploy use the same schedules as the deployments
    assert ("tvau-retrain/nightly", [CRON]) in names and ("score-night/nightly", [DEFAULT_CRON]) in names
