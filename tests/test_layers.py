"""The layers of the code (``.importlinter``, docs/design.md) and the size limits, checked.

``lint-imports`` reads the contracts; the cycle check and the private-name check are our own,
over the same import graph (grimp, which import-linter is built on)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("assistant", "index")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
# the exceptions, each explained in docs/design.md ("Size limits"); at most three of each
LONG_MODULES: set[str] = set()
LONG_FUNCTIONS: set[str] = set()


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` over the packages found first on the path from ``cwd``."""
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    script = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(script), "--config", str(cwd / ".importlinter"), "--no-cache"], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def said(result: subprocess.CompletedProcess) -> str:
    """What lint-imports printed, on one line (it wraps long contract names)."""
    return " ".join(result.stdout.split())


def test_the_layers_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken" in said(result)


def test_pure_text_contract_names_every_other_index_module():
    """index.text's contract lists the rest of index/ by name: a new module must be added there."""
    config = (ROOT / ".importlinter").read_text()
    section = config.split("[importlinter:contract:pure-text]")[1].split("[importlinter:contract:")[0]
    section = section.split("forbidden_modules")[1]
    listed = {line.strip() for line in section.splitlines() if line.startswith("    index.")}
    modules = {f"index.{p.stem}" for p in (ROOT / "index").glob("*.py") if p.stem != "__init__"}
    packages = {f"index.{p.parent.name}" for p in (ROOT / "index").glob("*/__init__.py") if p.parent.name != "text"}
    assert listed == modules | packages


@pytest.mark.parametrize("module, offending_import, contract", [
    pytest.param("index/text/leak.py", "import index.store", "index.text imports nothing else of the project",
                 id="text-imports-store"),
    pytest.param("index/leak.py", "from assistant.types import Answer", "index (documents in) never imports assistant",
                 id="index-imports-assistant"),
    pytest.param("assistant/interfaces/leak.py", "def f():\n    from assistant.pipeline import evidence\n",
                 "reach the pipeline, the LLMs and the index only through assistant.api", id="ui-imports-a-step"),
    pytest.param("assistant/pipeline/leak.py", "from assistant.evaluation import metrics",
                 "nothing imports assistant.evaluation", id="pipeline-imports-evaluation"),
    pytest.param("assistant/pipeline/leak.py", "from assistant.training import export",
                 "nothing imports assistant.training", id="pipeline-imports-training"),
])
def test_a_violation_breaks_its_contract(tmp_path, module, offending_import, contract):
    """The contracts can fail: a copy of the code with one forbidden import (at the top of a
    module, or inside a function) breaks the contract that forbids it."""
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "models"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    (tmp_path / module).write_text(offending_import + "\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert f"{contract}" in said(result) and "BROKEN" in said(result)
    assert lint_imports(ROOT).returncode == 0  # the real tree, beside it, still holds


def _graph():
    grimp = pytest.importorskip("grimp")
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def test_no_import_cycles():
    """No module imports one that imports it back, through any chain, counting imports inside
    functions (a package's ``__init__`` re-exporting its modules is not a cycle: nothing inside
    the package imports the package's root)."""
    graph = _graph()
    cycles = _strongly_connected(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(sorted(c)) for c in cycles)


def _strongly_connected(graph) -> list[set[str]]:
    """Components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter[0]
                counter[0] += 1
                stack.append(node)
                on_stack.add(node)
            for j in range(i, len(edges[node])):
                nxt = edges[node][j]
                if nxt not in index:
                    work.append((node, j + 1))
                    work.append((nxt, 0))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                if low[node] == index[node]:
                    component = set()
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        component.add(m)
                        if m == node:
                            break
                    if len(component) > 1:
                        out.append(component)
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
    return out


def test_cycle_finder_finds_a_cycle():
    class Graph:
        modules = {"a", "b", "c"}

        def find_modules_directly_imported_by(self, m):
            return {"a": {"b"}, "b": {"a"}, "c": {"a"}}[m]

    assert _strongly_connected(Graph()) == [{"a", "b"}]


def _python_files(*folders: str):
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def private_imports(path: Path) -> list[str]:
    """``from project.module import _name``: a private name used outside its module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    return found


def private_attributes(path: Path) -> list[str]:
    """``thing._name`` on anything but ``self`` or ``cls``: what a script outside the packages
    must not reach for (dunders such as ``__name__`` are public)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            found.append(f"{ast.unparse(node)} (line {node.lineno})")
    return found


def test_private_names_stay_in_their_module():
    """The packages, eval/ and bench/ import each other's public names only, and eval/ and bench/
    use no private attribute of what they import."""
    found = {str(p.relative_to(ROOT)): private_imports(p) for p in _python_files(*PACKAGES, "eval", "bench")}
    assert not {p: names for p, names in found.items() if names}
    found = {str(p.relative_to(ROOT)): private_attributes(p) for p in _python_files("eval", "bench")}
    assert not {p: names for p, names in found.items() if names}


def test_private_checks_can_fail(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from index.store import _private\nfrom index.store import VectorStore\n"
                      "catalog._db.execute('x')\nself._own = 1\nname = VectorStore.__name__\n")
    assert private_imports(sample) == ["index.store._private"]
    assert private_attributes(sample) == ["catalog._db (line 3)"]


def sizes(path: Path) -> tuple[int, list[tuple[str, int]]]:
    """(lines of the module, [(function, lines) for each function over the limit])."""
    text = path.read_text(encoding="utf-8")
    long = [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    return text.count("\n"), long


def test_modules_and_functions_stay_small():
    long_modules, long_functions = set(), set()
    for path in _python_files(*PACKAGES):
        name = str(path.relative_to(ROOT))
        lines, functions = sizes(path)
        if lines > MAX_MODULE_LINES:
            long_modules.add(name)
        long_functions |= {f"{name}:{f}" for f, _ in functions}
    assert long_modules <= LONG_MODULES, long_modules - LONG_MODULES
    assert long_functions <= LONG_FUNCTIONS, long_functions - LONG_FUNCTIONS
    assert len(LONG_MODULES) <= 3 and len(LONG_FUNCTIONS) <= 3
