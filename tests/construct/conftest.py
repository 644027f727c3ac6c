"""The construction tests' fixtures: tests/construct/fixtures.py (the data-quality tests share them)."""

from tests.construct.fixtures import cfg, records, stages, tiny_synth  # noqa: F401
