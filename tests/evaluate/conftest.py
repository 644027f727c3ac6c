"""The model-evaluation tests reuse the tiny footage, parameters and trained model of tests/train."""

from tests.train.fixtures import footage, model_cache, params, train_set, trained  # noqa: F401
