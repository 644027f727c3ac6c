"""dvc.yaml lists the code each stage runs (tvau.stagedeps reads it from the imports), and the check
notices a stage that runs a module it does not list."""

from __future__ import annotations

from pathlib import Path

import yaml

from tvau.stagedeps import closure, stage_modules, uncovered

REPO = Path(__file__).resolve().parents[1]


def test_every_stage_lists_the_modules_it_runs():
    missing = uncovered(REPO / "dvc.yaml")
    assert missing == {}, "run `python -m tvau.stagedeps --write`:\n" + "\n".join(
        f"{stage}: {' '.join(files)}" for stage, files in missing.items())


def test_the_check_sees_a_missing_module(tmp_path):
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    timelines = stages["timelines"]
    timelines["deps"] = [d for d in timelines["deps"] if d != "tvau/construct/motion.py"]
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"timelines": timelines}}))
    assert uncovered(tmp_path / "dvc.yaml") == {"timelines": ["tvau/construct/motion.py"]}


def test_closure_follows_function_level_imports_but_not_lazy_package_exports():
    # the timelines command imports its tracking and motion code inside the command's body
    runs = stage_modules("tvau construct timelines --annotations a --out b")
    assert {"tvau.construct.timelines", "tvau.construct.tracking", "tvau.construct.motion"} <= runs
    # ... and not what the module's other commands import (annotate's LVLM)
    assert "tvau.construct.lvlm" not in runs
    # importing tvau.train.config runs tvau/train/__init__.py, whose run_stage imports DeepSpeed's
    # loop only when called
    assert "tvau.train.loop" not in closure({"tvau.train.config"})
    assert "tvau.train.loop" in closure({"tvau.train"})
