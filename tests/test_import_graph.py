"""The package ladder (``scripts/import_graph.py``): today's graph passes; a cycle, an upward and a
sideways import (also function-local or under ``TYPE_CHECKING``) fail; each package's ruff.toml
and the picture in ``dynamo_plan/__init__.py`` match ``LAYERS``."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

import dynamo_plan

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "import_graph.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_graph"] = module  # dataclasses look the module up by name
    spec.loader.exec_module(module)
    return module


graph = _script()


def test_the_package_graph_is_a_ladder() -> None:
    run = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ok: no cycle, no upward import" in run.stdout
    assert run.stdout.splitlines()[0].split() == ["package", "rung", "imports"]


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in {"__init__.py": "", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


LADDER = [["__init__"], ["errors"], ["low"], ["high"]]


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "errors.py": "",
            "low/__init__.py": "from pkg.errors import E\n",
            "high/__init__.py": "from pkg.low import x\nfrom .. import errors\n",
        },
    )
    text, status = graph.check(root, [["errors", "__init__"], ["low"], ["high"]])
    assert status == 0, text
    assert "high" in text and "errors, low" in text


@pytest.mark.parametrize(
    "import_line",
    [
        "from pkg.high.mod import y",
        "import pkg.high",
        "def f():\n    from pkg.high import y\n",  # lazy import
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.high import y\n",
        "from ..high import y",  # relative
    ],
)
def test_an_upward_import_fails(tmp_path: Path, import_line: str) -> None:
    root = _tree(
        tmp_path,
        {"errors.py": "", "low/__init__.py": "", "low/a.py": import_line, "high/__init__.py": ""},
    )
    text, status = graph.check(root, LADDER)
    assert status == 1
    assert "upward (or sideways) imports:" in text
    assert "pkg/low/a.py" in text and "low (rung 2) -> high (rung 3)" in text


def test_a_sideways_import_fails(tmp_path: Path) -> None:
    root = _tree(
        tmp_path, {"errors.py": "", "low/__init__.py": "import pkg.high\n", "high/__init__.py": ""}
    )
    text, status = graph.check(root, [["__init__", "errors"], ["low", "high"]])
    assert status == 1
    assert "low (rung 1) -> high (rung 1)" in text


def test_a_cycle_fails_and_names_its_edges(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "errors.py": "",
            "low/__init__.py": "def f():\n    import pkg.high\n",
            "high/__init__.py": "from pkg.low import x\n",
        },
    )
    text, status = graph.check(root, [["__init__", "errors"], ["low", "high"]])
    assert status == 1
    assert "cycles:\n  high <-> low" in text
    assert "pkg/high/__init__.py:1: high -> low" in text
    assert "pkg/low/__init__.py:2: low -> high" in text


def test_a_package_missing_from_the_ladder_fails(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"errors.py": "", "new/__init__.py": ""})
    text, status = graph.check(root, [["__init__", "errors"]])
    assert status == 2
    assert "not in LAYERS: new" in text


def _module(name: str) -> str:
    return "dynamo_plan" if name == "__init__" else f"dynamo_plan.{name}"


@pytest.mark.parametrize(
    "package",
    sorted(p.name for p in (ROOT / "dynamo_plan").iterdir() if (p / "__init__.py").is_file()),
)
def test_each_package_ruff_toml_bans_the_rungs_above_it(package: str) -> None:
    rung = {n: i for i, names in enumerate(graph.LAYERS) for n in names}[package]
    config = tomllib.loads((ROOT / "dynamo_plan" / package / "ruff.toml").read_text())
    banned = set(config["lint"]["flake8-tidy-imports"]["banned-api"])
    ours = {b for b in banned if b.startswith("dynamo_plan.")}
    above = {_module(n) for names in graph.LAYERS[rung:] for n in names if n != package}
    assert ours == above
    assert config["extend"] == "../../pyproject.toml"


def test_the_docstring_picture_matches_layers() -> None:
    doc = dynamo_plan.__doc__ or ""
    rows = {
        int(line.split()[0]): line
        for line in doc.splitlines()
        if line.strip() and line.split()[0].isdigit()
    }
    assert sorted(rows) == list(range(len(graph.LAYERS)))
    for i, names in enumerate(graph.LAYERS):
        drawn = rows[i].split()[1:]
        for name in names:
            if name != "__init__":
                assert name in drawn, (i, name, rows[i])
