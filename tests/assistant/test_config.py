"""Settings a user gets wrong are named, and the package declares what it imports and ships
its example documents."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

from assistant import Settings, ask
from assistant.config import default_corpus
from tests.support import ROOT


# ----------------------------------------------------------------------------- settings
def test_an_unknown_setting_is_refused_naming_it():
    with pytest.raises(ValueError, match="unknown setting 'index'.*index_dir"):
        ask("q", index="/x")
    with pytest.raises(ValueError, match="'colour', 'flavour'"):
        Settings.from_env({}, colour="red", flavour="x")


@pytest.mark.parametrize("variable, value, kind", [
    ("ASSISTANT_K", "abc", "a whole number"),
    ("ASSISTANT_MAX_FILE_MB", "lots", "a number"),
    ("ASSISTANT_EMBED_WORKERS", "2.5", "a whole number"),
])
def test_a_variable_that_is_no_number_is_named(variable, value, kind):
    with pytest.raises(ValueError) as failed:
        Settings.from_env({variable: value})
    assert f"{variable}={value!r} is not {kind}" in str(failed.value)
    assert "environment variable" in str(failed.value)


def test_a_variable_out_of_range_is_named():
    with pytest.raises(ValueError, match=r"ASSISTANT_K='99': k \(passages\) must be .* 1 to 10"):
        Settings.from_env({"ASSISTANT_K": "99"})
    with pytest.raises(ValueError, match="ASSISTANT_BACKEND='gpt'"):
        Settings.from_env({"ASSISTANT_BACKEND": "gpt"})


def test_an_argument_overrides_a_bad_variable_and_is_itself_named():
    assert Settings.from_env({"ASSISTANT_K": "99"}, k=3).k == 3
    with pytest.raises(ValueError) as failed:
        Settings.from_env({"ASSISTANT_K": "2"}, k=99)
    assert "ASSISTANT_K" not in str(failed.value), "the bad value came from the argument"


def test_variables_are_read():
    s = Settings.from_env({"ASSISTANT_K": "3", "ASSISTANT_MODE": "extractive", "ASSISTANT_MAX_FILE_MB": "1.5"})
    assert (s.k, s.mode, s.max_file_mb) == (3, "extractive", 1.5)


# ----------------------------------------------------------------------------- package hygiene
def _distribution(module: str, owners: dict[str, list[str]]) -> set[str]:
    """The distributions that may provide ``module`` (``llama_index.llms.openai_like`` is
    ``llama-index-llms-openai-like``: llama_index is one namespace over many)."""
    parts = module.split(".")
    if parts[0] == "llama_index":
        return {_canonical("llama-index-" + "-".join(parts[1:3] if parts[1] != "core" else ["core"]))}
    return {_canonical(d) for d in owners.get(parts[0], [])}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(requirements: list[str]) -> set[str]:
    return {_canonical(re.match(r"[A-Za-z0-9_.-]+", r).group(0)) for r in requirements}


def test_every_imported_package_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    default = _requirement_names(project["dependencies"])
    extras = set().union(*(_requirement_names(r) for r in project["optional-dependencies"].values()))
    owners = importlib.metadata.packages_distributions()
    missing = []
    for path in sorted([*ROOT.joinpath("assistant").rglob("*.py"), *ROOT.joinpath("index").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in ("assistant", "index", "__future__"):
                    continue
                if not _distribution(module, owners) & (default | extras):
                    missing.append(f"{path.relative_to(ROOT)}: {module}")
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
    # the default install answers, and answers through an OpenAI-compatible server, by itself
    assert {"numpy", "llama-index-core", "llama-index-llms-openai-like", "gradio"} <= default


def test_the_default_corpus_is_found_in_a_checkout():
    assert default_corpus() == ROOT / "seeds"
    assert any(default_corpus().iterdir())


@pytest.mark.slow
def test_the_wheel_ships_the_default_corpus_and_finds_it(tmp_path):
    """``pip install .`` (here: the wheel it builds, unpacked) has the seeds inside the package."""
    source = tmp_path / "source"  # a copy: building writes into the source folder
    for name in ("assistant", "index", "seeds"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(tmp_path / "wheel"), str(source)],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "wheel").glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    modules = sorted(str(p.relative_to(ROOT)) for name in ("assistant", "index") for p in (ROOT / name).rglob("*.py"))
    assert [m for m in modules if m not in names] == []  # every subpackage is in the wheel
    seeds = sorted(p.name for p in (ROOT / "seeds").iterdir())
    assert sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("assistant/seeds/")) == seeds
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    found = subprocess.run([sys.executable, "-c", "from assistant.config import default_corpus as d; print(d())"],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path,
                           env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert found.stdout.strip() == str(tmp_path / "site" / "assistant" / "seeds"), found.stderr
