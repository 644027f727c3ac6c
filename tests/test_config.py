"""params.yaml loading: the repository's file is valid, and bad files fail naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from tvau.config import Params, ParamsError, load_params

REPO = Path(__file__).resolve().parents[1]


def _unlisted(model_cls: type[BaseModel], node: dict, prefix: str = "") -> list[str]:
    """Dotted names of fields (nested sections included) that the file does not spell out."""
    missing = []
    for name, field in model_cls.model_fields.items():
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


def test_missing_explicit_file_and_bad_yaml(tmp_path):
    with pytest.raises(ParamsError, match="no such parameters file"):
        load_params(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(broken)
