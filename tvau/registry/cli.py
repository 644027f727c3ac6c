"""`tvau registry list|promote|rollback`: the registered model's versions, gate verdicts, aliases and
champion history. The store is params.yaml's `registry` section (MLFLOW_TRACKING_URI overrides)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)

PARAMS_OPT = typer.Option(Path("params.yaml"), "--params", help="Parameters file (registry section is used).")


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code=2)


def _setup(params: Path) -> str:
    """Configure MLflow from params; returns the registered model's name."""
    from tvau.config import ParamsError, load_params
    from tvau.registry.tracking import configure

    try:
        cfg = load_params(params).registry
    except ParamsError as exc:
        _fail(str(exc))
    configure(cfg, params.resolve().parent)
    return cfg.model_name


@app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON {versions, history}."),
             params: Path = PARAMS_OPT) -> None:
    """Every registered version: aliases, gate verdict, failed gates, metrics; then the champion history."""
    from tvau.registry.models import history, list_versions

    name = _setup(params)
    rows, events = list_versions(name), history(name)
    if as_json:
        typer.echo(json.dumps({"model": name, "versions": [r.__dict__ for r in rows], "history": events}, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"registered model {name!r}")
    for col in ("version", "aliases", "gates", "failed gates", "micro_auc", "created", "run"):
        t.add_column(col)
    for r in rows:
        auc = r.metrics.get("micro_auc")
        t.add_row(r.version, ", ".join(r.aliases), r.gates, ", ".join(r.failed_gates),
                  "" if auc is None else f"{auc:.3f}", r.created, r.run_id[:12])
    console = Console()
    console.print(t)
    h = Table(title="champion history")
    for col in ("#", "action", "version", "replaced", "who", "when", "why"):
        h.add_column(col)
    for e in events:
        h.add_row(str(e["seq"]), e["action"], e["version"], e["previous"] or "-", e["who"], e["when"], e["why"])
    console.print(h)


@app.command("promote")
def promote_cmd(version: str = typer.Argument(..., help="Version to make champion (it must have passed its gates)."),
                why: str = typer.Option(..., "--why", help="Reason, recorded in the history."),
                who: str | None = typer.Option(None, "--who", help="Who promotes (default: the login name)."),
                params: Path = PARAMS_OPT) -> None:
    """Move alias `champion` to VERSION and record who, when, why and which version it replaced."""
    from tvau.registry.models import RegistryError, promote

    name = _setup(params)
    try:
        e = promote(name, version, who=who, why=why)
    except RegistryError as exc:
        _fail(str(exc))
    typer.echo(f"{name}: champion is now version {e['version']} (was {e['previous'] or 'none'})")


@app.command("rollback")
def rollback_cmd(why: str = typer.Option("", "--why", help="Reason, recorded in the history."),
                 to: str | None = typer.Option(None, "--to", help="Version to return to (default: the champion "
                                               "the current one replaced)."),
                 who: str | None = typer.Option(None, "--who", help="Who rolls back (default: the login name)."),
                 params: Path = PARAMS_OPT) -> None:
    """Make the previous champion champion again (recorded as a `rollback` event)."""
    from tvau.registry.models import RegistryError, rollback

    name = _setup(params)
    try:
        e = rollback(name, who=who, why=why, to=to)
    except RegistryError as exc:
        _fail(str(exc))
    typer.echo(f"{name}: rolled back; champion is now version {e['version']} (was {e['previous']})")
