"""The code each DVC stage runs, read from its imports, so `dvc.yaml` deps can be checked against it.

A stage's command (`tvau construct annotate ...`) names a click command; its callback is the entry
point. The modules it runs are the closure of imports, read with `ast` (no code is executed):

    entry function's own imports  +  its module's top-level imports
    then, for every tvau module reached: all of its imports, top-level and inside functions

A package reached only as the parent of an imported submodule counts with its top-level imports
only. The closure over-approximates (a module's function may import something this stage never calls),
which errs on the side of rerunning a stage. `uncovered(stage)` lists the modules that no dep in
dvc.yaml covers (a dep covers a file by naming it or a folder above it); `python -m tvau.stagedeps`
prints them per stage and exits 1 when any stage misses one.
"""

from __future__ import annotations

import ast
import shlex
import sys
from functools import cache
from pathlib import Path

import yaml

PACKAGE = "tvau"


SOURCE = Path(__file__).resolve().parent.parent  # the folder holding the tvau package


def _module_file(name: str) -> Path | None:
    """tvau.a.b -> tvau/a/b.py or tvau/a/b/__init__.py; None for anything else."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    base = SOURCE.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported(node: ast.AST, module: str, is_package: bool) -> set[str]:
    """tvau modules imported anywhere under `node` (relative imports resolved against `module`)."""
    found: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Import):
            found |= {a.name for a in n.names}
        elif isinstance(n, ast.ImportFrom):
            base = n.module or ""
            if n.level:
                parts = module.split(".")[: len(module.split(".")) - n.level + (1 if is_package else 0)]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            # `from pkg import mod` imports a module when `mod` is one.
            found |= {f"{base}.{a.name}" for a in n.names if _module_file(f"{base}.{a.name}")}
    return {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}


@cache
def _parse(module: str) -> tuple[ast.Module, bool] | None:
    path = _module_file(module)
    if path is None:
        return None
    return ast.parse(path.read_text(), str(path)), path.name == "__init__.py"


def _parents(module: str) -> set[str]:
    """Importing a.b.c runs a/__init__.py and a/b/__init__.py first."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def closure(roots: set[str]) -> set[str]:
    """Every tvau module reachable from `roots`. A module imported by name may run any of its
    functions, so all its imports count; a package reached only because one of its submodules was
    imported runs just its top level (its lazy re-exports stay unrun)."""
    used: set[str] = set()  # imported by name: every import inside counts
    run: set[str] = set()  # executed: its top-level imports count
    todo = [(m, True) for m in roots]
    while todo:
        m, named = todo.pop()
        parsed = _parse(m)
        if parsed is None or m in used or (m in run and not named):
            continue
        tree, is_pkg = parsed
        run.add(m)
        if named:
            used.add(m)
        found = _imported(tree, m, is_pkg) if named else _top_level_imports(tree, m, is_pkg)
        todo += [(n, True) for n in sorted(found)] + [(n, False) for n in sorted(_parents(m))]
    return run


def _top_level_imports(tree: ast.Module, module: str, is_pkg: bool) -> set[str]:
    found: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            found |= _imported(stmt, module, is_pkg)
    return found


def entry_modules(argv: list[str]) -> tuple[set[str], str]:
    """(the modules a `tvau ...` command line imports first, the command's module): its module's
    top-level imports and what its callback imports inside its body."""
    import typer

    from tvau.cli import app

    cmd = typer.main.get_command(app)
    for word in argv[1:]:
        if word not in getattr(cmd, "commands", {}):  # a group has sub-commands
            break
        cmd = cmd.commands[word]
    if cmd.callback is None:
        raise ValueError(f"{' '.join(argv)}: no such tvau command")
    fn = getattr(cmd.callback, "__wrapped__", cmd.callback)  # typer wraps the function it was given
    module = fn.__module__
    tree, is_pkg = _parse(module)
    body = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == fn.__name__)
    return _top_level_imports(tree, module, is_pkg) | _imported(body, module, is_pkg) | _parents(module), module


def stage_modules(cmd: str) -> set[str]:
    """The tvau modules a stage's command runs: its command's module, and the closure of what that
    command imports (not what the module's other commands import)."""
    argv = shlex.split(cmd)
    if not argv or argv[0] != PACKAGE:
        return set()
    roots, module = entry_modules(argv)
    return {module} | closure(roots)


def _relpath(module: str) -> str:
    """The module's path as dvc.yaml names it (relative to the project root, which holds tvau/)."""
    return _module_file(module).relative_to(SOURCE).as_posix()


def uncovered(dvc_yaml: Path) -> dict[str, list[str]]:
    """Stage -> the files of tvau modules it runs that none of its deps covers."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    missing: dict[str, list[str]] = {}
    for name, stage in stages.items():
        deps = [str(d).rstrip("/") for d in stage.get("deps") or []]
        files = {_relpath(m) for m in stage_modules(" ".join(str(stage["cmd"]).split()))}
        gaps = sorted(f for f in files if not any(f == d or f.startswith(d + "/") for d in deps))
        if gaps:
            missing[name] = gaps
    return missing


def _collapse(files: list[str]) -> list[str]:
    """Files -> the shortest list of deps naming them: a package folder all of whose modules are
    listed stands for them."""
    out, by_dir = [], {}
    for f in files:
        by_dir.setdefault(str(Path(f).parent), []).append(f)
    for folder, members in sorted(by_dir.items()):
        every = {p.relative_to(SOURCE).as_posix() for p in (SOURCE / folder).glob("*.py")}
        out += [folder] if folder != PACKAGE and every <= set(members) else sorted(members)
    return out


def write(dvc_yaml: Path) -> dict[str, list[str]]:
    """Add to each stage's deps the modules it runs and does not list (comments are kept)."""
    from ruamel.yaml import YAML

    missing = uncovered(dvc_yaml)
    if not missing:
        return {}
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096
    rt.indent(mapping=2, sequence=4, offset=2)  # the layout dvc.yaml is written in
    doc = rt.load(dvc_yaml.read_text())
    added = {}
    for stage, files in missing.items():
        added[stage] = _collapse(files)
        doc["stages"][stage]["deps"].extend(added[stage])
    with dvc_yaml.open("w") as f:
        rt.dump(doc, f)
    return added


def main(argv: list[str] | None = None) -> int:
    """`python -m tvau.stagedeps [--write]`: list (or add) the modules each stage runs but does not list."""
    argv = sys.argv[1:] if argv is None else argv
    if "--write" in argv:
        for stage, deps in write(Path("dvc.yaml")).items():
            print(f"{stage}: added {' '.join(deps)}")
        return 0
    missing = uncovered(Path("dvc.yaml"))
    for stage, files in missing.items():
        print(f"{stage}: runs {len(files)} module(s) not in its deps: {' '.join(files)}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
