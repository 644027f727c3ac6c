"""The training tests' fixtures: tests/train/fixtures.py (the model-evaluation tests share them)."""

from tests.train.fixtures import footage, model_cache, params, train_set, trained  # noqa: F401
