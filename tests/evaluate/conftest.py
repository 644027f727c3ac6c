"""The model-evaluation tests reuse the tiny footage, parameters and trained model of tests/train
(loaded by path: the tests folder is not a package under pytest's importlib mode)."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("_tvau_train_fixtures", Path(__file__).parents[1] / "train" / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

footage = _fixtures.footage
model_cache = _fixtures.model_cache
params = _fixtures.params
train_set = _fixtures.train_set
trained = _fixtures.trained
tiny_params = _fixtures.tiny_params
