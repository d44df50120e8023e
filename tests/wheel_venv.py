"""The package's wheel, built once per test session, installed into fresh virtualenvs.

The wheel is built without build isolation (hatchling comes with the dev extra, so no index is
needed). A fresh virtualenv gets it with ``--no-deps``; its dependencies are borrowed from the
test environment through a ``.pth`` line, so ``dynamo_plan`` itself comes only from the wheel and
nothing is downloaded.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from tests.conftest import REPO_ROOT


def build_wheel(out: Path) -> Path:
    """``python -m build --wheel`` of the checkout into ``out``; the wheel's path."""
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("dynamo_plan-*.whl")
    return built


def fresh_venv(wheel: Path, env_dir: Path) -> Path:
    """A new virtualenv at ``env_dir`` with ``wheel`` installed (dependencies borrowed); returns
    its ``purelib`` (where ``dynamo_plan`` was installed)."""
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", wheel],
        check=True,
        capture_output=True,
    )
    return Path(purelib)
