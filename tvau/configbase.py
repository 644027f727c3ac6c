"""The base class of every params.yaml section (unknown keys are errors, not silently ignored) and
the one reader of the project's YAML files (params.yaml, registry/policy.yaml)."""

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParamsError(ValueError):
    """A params file that cannot be used; the message names the file and every bad key."""


def describe_errors(err: ValidationError, path: Path) -> str:
    lines = [f"{path}: invalid parameters"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"  unknown key '{key}' (not a parameter of this section; check spelling)")
        else:
            lines.append(f"  '{key}': {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def load_sections(path: str | Path, model: type[BaseModel], declared_only: bool = False) -> BaseModel:
    """A params file validated as `model` (tvau.config.load_params: the whole file as Params). A
    missing file is an error, never a silent fall back to the code's defaults. `declared_only`: keep
    the sections `model` declares and leave the others to the stages that read them, for a stage whose
    code must not depend on every section's module (the embedded backbone's pretraining)."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: no such parameters file (run from the project root, or pass --params)")
    raw = read_yaml_mapping(path, ParamsError)
    if declared_only:
        raw = {k: v for k, v in raw.items() if k in model.model_fields}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(describe_errors(exc, path)) from None


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
