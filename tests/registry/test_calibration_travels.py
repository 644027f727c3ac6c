"""The calibration fitted by `tvau evaluate` travels inside the registered model: log_pyfunc puts
it into the logged trained-model directory as calibration.json (the DVC output itself untouched),
and the directory nightly scoring downloads carries it, with or without a bundled backbone."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.registry.helpers import eval_report, write_model_dir
from tvau.evaluate.calibration import fit
from tvau.registry import models
from tvau.registry.gates import check_gates
from tvau.registry.policy import load_policy
from tvau.registry.pyfunc import log_pyfunc
from tvau.registry.tracking import PipelineRun

REPO = Path(__file__).resolve().parents[2]


def test_calibration_travels_with_the_registered_model(store, tiny_cache, tmp_path, monkeypatch):
    from tvau.model.tiny import ensure_tiny
    from tvau.registry.resolve import download_model
    from tvau.score.verdict import CalibrationError, read_calibration

    block = fit([0.2, 0.4, 0.6] * 20, [True] * 30 + [False] * 30, 0.05, 4 / 24,
                {"fps": 24.0, "clip_frames": 24, "stride": 24}, 100, 0, 0.95, "validation")
    root = tmp_path / "checkout"
    shutil.copytree(ensure_tiny(tiny_cache, 0), root / "data" / "backbone")
    monkeypatch.chdir(root)
    mdir = write_model_dir(root / "data" / "models" / "tvau", tiny_cache, seed=1, backbone="data/backbone")
    run = PipelineRun.start(store, root, name="calibrated")
    with_cal = log_pyfunc(mdir, run.run_id, name="with", root=root, calibration=block)
    without = log_pyfunc(mdir, run.run_id, name="without", root=root)
    gates = check_gates(eval_report(), load_policy(REPO / "registry" / "policy.yaml"))
    mv = models.register_candidate(with_cal, gates, {}, "tvau")
    run.finish()
    assert not (mdir / "calibration.json").exists()  # the DVC output is left as DVC made it
    local = download_model(f"models:/tvau/{mv.version}")  # bundled backbone: a patched copy
    cal = read_calibration(local)
    assert cal.threshold == block["threshold"]["value"] and cal.raw == block
    try:
        read_calibration(download_model(without))
    except CalibrationError as exc:
        assert "no calibration.json" in str(exc)
    else:
        raise AssertionError("a model logged without calibration must not carry one")
