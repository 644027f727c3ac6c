"""The import layers of `tvau`, checked from the source with `ast` (nothing is imported or run).

From bottom to top; a module may import modules of its own layer or of a lower one:

    layer       what                                              modules
    foundation  helpers that import nothing of tvau               tvau, configbase, vocab, questions, storage,
                                                                  cpu, jsonout, video, report, s3server
    config      the parameter sections (own rule, below)          tvau.config, tvau/*/config.py
    data        footage, datasets, metrics, data quality, and     synth, data, metrics, quality,
                the wording and score definitions shared above    construct.sentences, construct.dialogue,
                                                                  score.verdict
    model       backbone, AHD, RAE, LoRA, the trained-model dir   model
    construct   the dataset stages (the LVLM annotator runs the   construct
                backbone, so construct sits above model)
    learn       pretraining, training, evaluation, the baseline   pretrain, train, evaluate, baseline
    registry    gates, MLflow tracking, the model registry,       registry
                models:/ and runs:/ URIs -> model directories
    serve       nightly scoring, lineage                          score, lineage
    top         entry points: every CLI, the demo, the servers'   tvau.cli, tvau/*/cli.py, demo, score.demo,
                stack, tools that write docs or check the repo    stack, stagedeps, reproduce, results

- A package's entry covers its submodules; the longest listed name wins (construct.sentences is
  data although construct is construct), and `*/cli.py` (top) and `*/config.py` (config) go by
  file name, whatever their package. A module missing from the table fails the test.
- Entry points are on top so that a CLI may reach any layer: `tvau evaluate --model models:/...`
  resolves the URI through the registry before the (lower) evaluation code sees a directory.
- Config modules import only configbase, vocab and other config modules, so that parsing
  params.yaml never pulls in torch or MLflow; `tvau.config` composes every `*/config.py`.
- `flows/*.py` wire tvau into Prefect: they import public tvau modules and libraries; tvau never
  imports flows, benchmarks or tests.

Imports are read at the top level and inside functions, relative imports resolved. ALLOWED lists
the imports that break these rules today, each with its reason; it should only shrink.
"""

from __future__ import annotations

import ast
from fnmatch import fnmatch
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

LAYERS = ("foundation", "config", "data", "model", "construct", "learn", "registry", "serve", "top")

LAYER_OF = {
    "tvau": "foundation",  # the package root only; other top-level modules are listed one by one
    "tvau.configbase": "foundation",
    "tvau.vocab": "foundation",
    "tvau.questions": "foundation",
    "tvau.storage": "foundation",
    "tvau.cpu": "foundation",
    "tvau.jsonout": "foundation",
    "tvau.video": "foundation",
    "tvau.report": "foundation",  # overlays and HTML pages: evaluation, scoring and the demo write them
    "tvau.s3server": "foundation",
    "tvau.config": "config",
    "tvau.synth": "data",
    "tvau.data": "data",
    "tvau.metrics": "data",
    "tvau.quality": "data",
    "tvau.construct.sentences": "data",  # the annotation wording: the tiny backbone and metrics speak it too
    "tvau.construct.dialogue": "data",  # the SFT dialogue format: the tiny backbone answers in it
    "tvau.score.verdict": "data",  # one per-video score: evaluation calibrates it, the scorer applies it
    "tvau.model": "model",
    "tvau.construct": "construct",
    "tvau.pretrain": "learn",
    "tvau.train": "learn",
    "tvau.evaluate": "learn",
    "tvau.baseline": "learn",
    "tvau.registry": "registry",
    "tvau.score": "serve",
    "tvau.lineage": "serve",
    "tvau.cli": "top",
    "tvau.demo": "top",
    "tvau.score.demo": "top",  # the demo's synthetic night: renders footage and runs the scoring flow
    "tvau.stack": "top",
    "tvau.stagedeps": "top",
    "tvau.reproduce": "top",
    "tvau.results": "top",
}
BY_FILE_NAME = {"tvau.*.cli": "top", "tvau.*.config": "config"}
CONFIG_MAY_IMPORT = {"tvau", "tvau.configbase", "tvau.vocab"}  # besides other config modules

# (importer, imported) -> why the rule is broken for now. Keep it short; fix rather than add.
ALLOWED = {
    ("tvau.demo", "flows.retrain"): "`tvau demo` runs the retrain flow (lazily, inside run_flow)",
    ("tvau.score.cli", "flows.score"): "`tvau score` runs the nightly scoring flow once (lazily)",
    ("tvau.score.demo", "flows.score"): "the demo's night is scored by the same flow as production (lazily)",
}
FORBIDDEN_IN_TVAU = ("flows", "benchmarks", "tests")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted((REPO / "tvau").rglob("*.py"))}


def imports(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in it; `from pkg import mod` counts pkg and pkg.mod."""
    name, is_pkg = _module_name(path), path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: against the module's package
                package = name.split(".")[: len(name.split(".")) - node.level + int(is_pkg)]
                base = ".".join([*package, base] if base else package)
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES}
    return found - {name}


GRAPH = {m: {i for i in imports(p) if i in MODULES} for m, p in MODULES.items()}


def layer(module: str) -> str | None:
    for pattern, lay in BY_FILE_NAME.items():
        if fnmatch(module, pattern):
            return lay
    parts = module.split(".")
    for n in range(len(parts), 1, -1):
        if ".".join(parts[:n]) in LAYER_OF:
            return LAYER_OF[".".join(parts[:n])]
    return LAYER_OF.get(module)  # "tvau" covers the package root only


def _allowed(importer: str, imported: str) -> bool:
    return (importer, imported) in ALLOWED


def test_every_module_has_a_layer():
    missing = sorted(m for m in MODULES if layer(m) is None)
    assert not missing, f"give these modules a layer in tests/test_layers.py LAYER_OF: {missing}"


def test_no_import_cycles():
    edges = {m: {i for i in deps if not _allowed(m, i)} for m, deps in GRAPH.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        path.pop()
        state[m] = 2
        return None

    for m in sorted(edges):
        if m not in state and (cycle := visit(m)):
            raise AssertionError("import cycle: " + " -> ".join(cycle))


def test_no_module_imports_a_higher_layer():
    bad = []
    for m, deps in sorted(GRAPH.items()):
        lm = layer(m)
        for i in sorted(deps):
            li = layer(i)
            if lm is None or li is None or _allowed(m, i):
                continue
            if LAYERS.index(li) > LAYERS.index(lm):
                bad.append(f"{m} ({lm}) imports {i} ({li})")
    assert not bad, "imports of a higher layer (see the table in tests/test_layers.py):\n" + "\n".join(bad)


def test_config_modules_import_only_configs():
    bad = []
    for m, deps in sorted(GRAPH.items()):
        if layer(m) != "config" or m == "tvau.config":  # tvau.config composes every section
            continue
        bad += [f"{m} imports {i}" for i in sorted(deps)
                if i not in CONFIG_MAY_IMPORT and layer(i) != "config" and not _allowed(m, i)]
    assert not bad, "config modules import only configbase, vocab and other configs:\n" + "\n".join(bad)


def test_tvau_never_imports_flows_benchmarks_or_tests():
    bad = [f"{m} imports {i}" for m, p in sorted(MODULES.items()) for i in sorted(imports(p))
           if i.split(".")[0] in FORBIDDEN_IN_TVAU and not _allowed(m, i)]
    assert not bad, "tvau must not import flows, benchmarks or tests:\n" + "\n".join(bad)


def test_flows_import_only_public_tvau_modules():
    bad = []
    for path in sorted((REPO / "flows").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                pairs = [(a.name, None) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                pairs = [(node.module or "", a.name) for a in node.names]
            else:
                continue
            for mod, name in pairs:
                where = f"flows/{path.name}:{node.lineno} imports {mod}{'.' + name if name else ''}"
                if mod.split(".")[0] in ("benchmarks", "tests"):
                    bad.append(where)
                elif mod.split(".")[0] == "tvau" and (
                    mod not in MODULES
                    or any(part.startswith("_") for part in mod.split("."))
                    or (name or "").startswith("_")
                ):
                    bad.append(where + " (not a public tvau module or name)")
    assert not bad, "flows wire public tvau modules and libraries only:\n" + "\n".join(bad)


def test_the_allow_list_is_still_needed():
    stale = sorted(f"{a} -> {b}" for a, b in ALLOWED if a not in MODULES or b not in imports(MODULES[a]))
    assert not stale, f"remove from ALLOWED, these imports are gone: {stale}"
