"""The container image: the Dockerfile lints clean (hadolint) and copies what the wheel is made of;
scripts/build_image.sh builds it here (buildah, chroot isolation, on a debootstrapped Debian base,
offline from a wheelhouse) and the image runs ``dynamo-plan --version`` and
``plan run --print-config`` as its non-root user, with no pip or compiler in it.

The build needs root, Debian's ``buildah`` and ``debootstrap`` (scripts/test.sh installs them);
without them that test is skipped with the reason. The base tarball, the wheelhouse and buildah's
storage are cached in ``.cache/image`` (``IMAGE_CACHE``), so a second run only rebuilds the image.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from dynamo_plan import __version__
from tests.conftest import REPO_ROOT, SHARED_DATA
from tests.optional import missing

DOCKERFILE = REPO_ROOT / "Dockerfile"
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_image.sh"
PROFILE = SHARED_DATA / "profiles" / "h200_llama3.1-8b-fp8_tp1p_tp1d"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def hadolint() -> str:
    found = shutil.which(
        "hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    if found is None:
        pytest.fail("hadolint is missing: it comes with the dev extra (pip install -e '.[dev]')")
    return found


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [hadolint(), "--no-color", str(path)], capture_output=True, text=True, timeout=60
    )


def test_dockerfile_lints_clean() -> None:
    run = lint(DOCKERFILE)
    assert run.returncode == 0 and not run.stdout.strip(), run.stdout + run.stderr


def test_the_linter_finds_what_it_should(tmp_path: Path) -> None:
    """The lint above is not vacuous: a floating tag and an unpinned apt install are reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y gcc\n")
    run = lint(bad)
    assert run.returncode != 0
    assert {"DL3007", "DL3008"} <= set(re.findall(r"DL\d{4}", run.stdout)), run.stdout


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (m.group(1).upper(), m.group(2).strip())
        for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", joined, flags=re.MULTILINE)
    ]


def test_dockerfile_copies_what_the_wheel_is_made_of() -> None:
    """Every package and force-included folder of the wheel (pyproject.toml), and the readme, is
    COPYed into the build stage and let through by .dockerignore's allow-list."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {*wheel["packages"], *wheel["force-include"], project["project"]["readme"]}
    copied = {
        src.rstrip("/")
        for kind, args in _instructions(DOCKERFILE.read_text(encoding="utf-8"))
        if kind == "COPY" and not args.startswith("--from")
        for src in args.split()[:-1]
    }
    assert needed <= copied, needed - copied
    ignore = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    allowed = {ln[1:].rstrip("/") for ln in ignore if ln.startswith("!")}
    assert "*" in ignore and needed <= allowed, needed - allowed


def test_final_stage_is_non_root_with_the_cli_as_entrypoint() -> None:
    instructions = _instructions(DOCKERFILE.read_text(encoding="utf-8"))
    last_from = max(i for i, (kind, _) in enumerate(instructions) if kind == "FROM")
    final = instructions[last_from:]
    assert final[0][1] == "${BASE}"
    users = [args for kind, args in final if kind == "USER"]
    assert users and not users[-1].startswith(("0", "root")), users
    assert ("ENTRYPOINT", '["dynamo-plan"]') in final
    assert ("ARG", "BASE=python:3.11-slim") in instructions[:last_from]


# -- the build ---------------------------------------------------------------------------------


def _cannot_build() -> str | None:
    if os.geteuid() != 0:
        return "buildah with chroot isolation and debootstrap need root here"
    missing = [tool for tool in ("buildah", "debootstrap") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (apt-get install buildah debootstrap)"
    return None


def buildah(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """buildah on the build script's storage (``scripts/build_image.sh buildah ARGS``)."""
    return subprocess.run(
        ["bash", str(BUILD_SCRIPT), "buildah", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )


def run_image(
    container: str, config: dict[str, Any], *args: str, volumes: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """The image's ENTRYPOINT with ``args``, as its user, in the container (chroot isolation)."""
    flags = [f"--volume={v}" for v in volumes]
    return buildah(
        "run", "--isolation", "chroot", *flags, container, "--", *config["Entrypoint"], *args
    )


def test_image_builds_and_runs(tmp_path: Path) -> None:
    """One test, so that one xdist worker builds the image: its config, ``--version``, a
    ``plan run --print-config`` with a profile mounted, its user, no build tools."""
    reason = _cannot_build()
    if reason is not None:
        missing(f"image not built: {reason}")
    env = {k: v for k, v in os.environ.items() if k not in ("IMAGE_TAG", "IMAGE_PYTHON")}
    env["IMAGE_PYTHON"] = sys.executable  # the wheelhouse: the test environment's pins
    built = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=1500, env=env
    )
    assert built.returncode == 0, built.stderr[-6000:]
    image = built.stdout.strip().splitlines()[-1]
    assert image.endswith(f"dynamo-plan:{__version__}"), image

    config: dict[str, Any] = json.loads(buildah("inspect", "--type", "image", image).stdout)[
        "OCIv1"
    ]["config"]
    assert config["Entrypoint"] == ["dynamo-plan"]
    assert config["User"] == "10001:10001"
    assert any(e.startswith("PATH=/opt/dynamo-plan/bin:") for e in config["Env"]), config["Env"]

    container = buildah("from", image).stdout.strip().splitlines()[-1]
    try:
        run = run_image(container, config, "--version")
        assert run.stdout.strip() == f"dynamo-plan {__version__}"

        profile = tmp_path / "profile"
        shutil.copytree(PROFILE, profile)
        args = ["plan", "run", "--profile", "/data/profile", "--model", MODEL]
        args += ["--namespace", "llama-8b", "--interval", "30", "--print-config", "-o", "json"]
        run = run_image(container, config, *args, volumes=(f"{profile}:/data/profile:ro",))
        settings = json.loads(run.stdout)
        assert settings["profile"] == "/data/profile"
        assert settings["model"] == MODEL and settings["interval"] == 30

        probe = (
            "import os, shutil; print(os.getuid(), os.getgid(), "
            "[t for t in ('gcc', 'cc', 'make', 'pip', 'pip3') if shutil.which(t)])"
        )
        run = buildah("run", "--isolation", "chroot", container, "--", "python3", "-c", probe)
        assert run.stdout.split() == ["10001", "10001", "[]"], run.stdout
    finally:
        buildah("rm", container)
