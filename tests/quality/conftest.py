"""The data-quality gate is tested on the construction stages' tables: tests/construct/fixtures.py."""

from tests.construct.fixtures import cfg, records, stages, tiny_synth  # noqa: F401
