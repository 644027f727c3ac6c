"""`tvau stack up|down|status|env`: the production-like stack on loopback (see infra/README.md)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)

PARAMS = typer.Option(Path("params.yaml"), "--params", help="Parameters file (its `stack:` section).")
DIR = typer.Option(None, "--dir", help="Stack folder (overrides stack.dir).")


def _stack(params: Path, dir: Path | None, quiet: bool = False):
    from tvau.config import ParamsError, load_params
    from tvau.stack.stack import Stack

    try:
        cfg = load_params(params).stack
    except ParamsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if dir is not None:
        cfg = cfg.model_copy(update={"dir": str(dir)})
    # Progress goes to stderr so that --json keeps stdout for the JSON alone.
    return Stack(cfg, echo=(lambda m: None) if quiet else (lambda m: typer.echo(m, err=True)))


def _print_services(status: dict) -> None:
    for name, s in status["services"].items():
        mark = "ok  " if s["healthy"] else "DOWN"
        extra = f"   ui {s['ui']}" if s.get("ui") else ""
        typer.echo(f"{mark} {name:<9} {s['url'] or '-'}{extra}")


@app.command("up")
def up(params: Path = PARAMS, dir: Path = DIR, json_out: bool = typer.Option(False, "--json")) -> None:
    """Start PostgreSQL, the S3 server, MLflow, Prefect, the work pool and a worker; wait until
    each is healthy. Running services are left alone, so a second `up` does nothing."""
    from tvau.stack.secrets import SecretsError
    from tvau.stack.stack import StackError

    stack = _stack(params, dir, quiet=json_out)
    try:
        result = stack.up()
    except SecretsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    except StackError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    if json_out:
        typer.echo(json.dumps(result, indent=2))
        return
    if not result["started"]:
        typer.echo(f"already running ({result['status']['dir']})")
    else:
        secs = ", ".join(f"{k} {v:.1f} s" for k, v in result["seconds"].items())
        typer.echo(f"started {', '.join(result['started'])} ({secs})")
    _print_services(result["status"])
    typer.echo(f"clients: eval \"$(tvau stack env{' --dir ' + shlex.quote(str(dir)) if dir else ''})\"")


@app.command("down")
def down(params: Path = PARAMS, dir: Path = DIR) -> None:
    """Stop every service of the stack (data, registry and objects are kept)."""
    stack = _stack(params, dir)
    result = stack.down()
    if result["strays"]:
        typer.echo(f"warning: swept up {len(result['strays'])} stray process(es): {result['strays']}", err=True)
    secs = ", ".join(f"{k} {v:.1f} s" for k, v in result["seconds"].items())
    typer.echo(f"stopped ({stack.layout.root}; {secs})")


@app.command("status")
def status(params: Path = PARAMS, dir: Path = DIR, json_out: bool = typer.Option(False, "--json")) -> None:
    """Each service with its URL and whether it answers its health check. Exit status 1 unless
    all are healthy."""
    from tvau.stack.secrets import SecretsError

    try:
        st = _stack(params, dir).status()
    except SecretsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if json_out:
        typer.echo(json.dumps(st, indent=2))
    else:
        _print_services(st)
    if not st["healthy"]:
        raise typer.Exit(code=1)


@app.command("env")
def env(params: Path = PARAMS, dir: Path = DIR, json_out: bool = typer.Option(False, "--json")) -> None:
    """Shell exports that point clients (mlflow, prefect, boto3, dvc) at the stack. No secret is
    printed: the S3 keys stay in the 0600 file AWS_SHARED_CREDENTIALS_FILE names."""
    from tvau.stack.stack import StackError

    try:
        variables = _stack(params, dir).client_env()
    except StackError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if json_out:
        typer.echo(json.dumps(variables, indent=2))
    else:
        sys.stdout.write("".join(f"export {k}={shlex.quote(v)}\n" for k, v in variables.items()))
