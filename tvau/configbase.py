"""The base class of every params.yaml section (unknown keys are errors, not silently ignored) and
the one reader of the project's YAML files (params.yaml, registry/policy.yaml)."""

from pathlib import Path

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def read_yaml_mapping(path: Path, error: type[Exception]) -> dict:
    """The top-level mapping of a YAML file; any other content raises `error` naming the file."""
    import yaml

    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise error(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return raw
