"""params.yaml loading: the repository's file is valid, and bad files fail naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tvau.config import Params, ParamsError, load_params

REPO = Path(__file__).resolve().parents[1]


def test_repository_params_file_is_valid():
    params = load_params(REPO / "params.yaml")
    assert isinstance(params, Params)
    # The file must spell out every section, so that DVC stages can depend on its keys.
    raw_keys = set(__import__("yaml").safe_load((REPO / "params.yaml").read_text()))
    assert raw_keys == set(Params.model_fields)


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
