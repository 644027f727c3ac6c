"""params.yaml loading: the repository's file is valid, and bad files fail naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from tvau.config import Params, ParamsError, load_params
from tvau.model.config import PROFILES, ModelConfig

REPO = Path(__file__).resolve().parents[1]


# Keys a backbone profile supplies (tvau.model.config.PROFILES): params.yaml names the profile instead.
PROFILE_KEYS = {f"model.{k}" for values in PROFILES.values() for k in values}


def _unlisted(model_cls: type[BaseModel], node: dict, prefix: str = "") -> list[str]:
    """Dotted names of fields (nested sections included) that the file does not spell out."""
    missing = []
    for name, field in model_cls.model_fields.items():
        if prefix + name in PROFILE_KEYS:
            continue
        if name not in node:
            missing.append(prefix + name)
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            missing += _unlisted(field.annotation, node[name], f"{prefix}{name}.")
    return missing


def test_repository_params_file_is_valid_and_complete():
    params = load_params(REPO / "params.yaml")
    assert isinstance(params, Params)
    # Every parameter must be spelled out: a DVC stage depends on params.yaml keys, so a value that
    # only lived as a code default could change outputs without DVC noticing.
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    assert _unlisted(Params, raw) == []
    # The check itself notices a missing nested key.
    del raw["metrics"]["baseline"][next(iter(raw["metrics"]["baseline"]))]
    assert len(_unlisted(Params, raw)) == 1


def test_unknown_key_is_named(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("model:\n  backbone: embedded:tiny\n  bakcbone_dtype: float32\n")
    with pytest.raises(ParamsError) as err:
        load_params(bad)
    msg = str(err.value)
    assert str(bad) in msg
    assert "model.bakcbone_dtype" in msg and "unknown key" in msg


def test_wrong_type_is_named(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("clip:\n  num_frames: many\n")
    with pytest.raises(ParamsError, match=r"clip\.num_frames"):
        load_params(bad)


def _differences(code: dict, file: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(code) | set(file)):
        a, b = code.get(key), file.get(key)
        if isinstance(a, dict) and isinstance(b, dict) and a and b:
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: code {a!r}, params.yaml {b!r}")
    return out


def test_code_defaults_equal_params_yaml(monkeypatch):
    # One source of defaults: a section built without params.yaml must not run another pipeline.
    monkeypatch.chdir(REPO)  # the profile of data/backbone is read from the backbone directory
    assert _differences(Params().model_dump(mode="json"), load_params(REPO / "params.yaml").model_dump(mode="json")) == []
    # The comparison sees a drifted default.
    drifted = Params().model_copy(update={"seed": 1}).model_dump(mode="json")
    assert _differences(drifted, load_params(REPO / "params.yaml").model_dump(mode="json")) == ["seed: code 1, params.yaml 0"]


def test_backbone_profiles_pin_the_module_sizes():
    # The paper's 7B and the embedded default each take their sizes from their own profile.
    seven_b = ModelConfig(backbone="Qwen/Qwen2.5-VL-7B-Instruct")
    assert (seven_b.ahd_hidden, seven_b.rae_input) == (1024, "probs")
    embedded = ModelConfig(backbone="embedded:tiny")
    assert (embedded.ahd_hidden, embedded.rae_input) == (256, "probs_level")
    assert ModelConfig(backbone="embedded:tiny", profile="qwen2.5-vl-7b").ahd_hidden == 1024
    assert ModelConfig(backbone="embedded:tiny", ahd_hidden=64).ahd_hidden == 64  # an explicit key wins
    assert ModelConfig(backbone=str(REPO / "data" / "backbone")).profile_values() == PROFILES["embedded"]


def test_missing_file_is_an_error_even_at_the_default_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ParamsError, match="params.yaml: no such parameters file"):
        load_params()


def test_missing_explicit_file_and_bad_yaml(tmp_path):
    with pytest.raises(ParamsError, match="no such parameters file"):
        load_params(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(broken)


def test_pretraining_reads_its_own_sections_only(tmp_path):
    """The pretraining stages load seed, clip, model and pretrain, validated as load_params does, and
    nothing of the other sections (whose stages check them), so their code is not its dependency."""
    from tvau.configbase import load_sections
    from tvau.pretrain.config import PretrainParams

    full = load_params(REPO / "params.yaml")
    ours = load_sections(REPO / "params.yaml", PretrainParams, declared_only=True)
    assert ours.pretrain == full.pretrain and ours.clip == full.clip and ours.model == full.model
    assert ours.seed == full.seed
    f = tmp_path / "p.yaml"
    f.write_text("train: {not_a_key: 1}\npretrain: {vision: {steps: 7}}\n")
    assert load_sections(f, PretrainParams, declared_only=True).pretrain.vision.steps == 7
    f.write_text("pretrain: {vision: {stepz: 7}}\n")
    with pytest.raises(ParamsError, match="unknown key 'pretrain.vision.stepz'"):
        load_sections(f, PretrainParams, declared_only=True)
    with pytest.raises(ParamsError, match="no such parameters file"):
        load_sections(tmp_path / "absent.yaml", PretrainParams, declared_only=True)
    # The pretraining's params sections, as DVC lists them, are the ones it reads.
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for stage, part in (("pretrain_vision", "vision"), ("pretrain_language", "language")):
        assert {"seed", "pretrain.world", f"pretrain.{part}", "clip.height", "clip.width",
                "model.tiny_seed"} == set(stages[stage]["params"])
