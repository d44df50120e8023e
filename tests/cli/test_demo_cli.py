"""``dynamo-plan demo``: runs offline, writes the profile and the plots, compares every policy."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_demo_quick_json(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    r = run_cli("demo", "--quick", "--out", out, "-o", "json")
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    assert sorted(d["policy"] for d in doc["results"]) == [
        "dynamo",
        "optimal",
        "oracle-forecast",
        "planner",
        "reactive",
        "static",
    ]
    assert all(d["completed"] == d["requests"] > 0 for d in doc["results"])
    assert (out / "profile" / "selected_decode_interpolation" / "raw_data.npz").is_file()
    assert (out / "simulation_compare.png").read_bytes()[:8] == PNG_MAGIC
    assert (out / "requests.csv").is_file()
    assert all(Path(f).is_file() for f in doc["files"])


def test_demo_table_with_profile_plots(tmp_path: Path) -> None:
    out = tmp_path / "full"
    r = run_cli("demo", "--out", out)
    assert r.exit_code == 0, r.stderr
    for name in ("optimal", "oracle-forecast", "planner", "dynamo", "reactive", "static"):
        assert name in r.stdout
    plots = sorted(p.name for p in out.rglob("*.png"))
    assert "simulation_compare.png" in plots and len(plots) > 1


def test_demo_out_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    r = run_cli("demo", "--quick", "--out", target)
    assert r.exit_code == 1
    assert r.stderr.strip().startswith("error:") and len(r.stderr.strip().splitlines()) == 1


def test_next_hint_is_one_copyable_line(tmp_path: Path) -> None:
    """The ``next:`` command is printed whole on one line (no wrap at 80 columns, paths
    quoted): it can be copied and run as it is."""
    import shlex

    out = tmp_path / "demo out"  # a space: the path must be quoted
    r = run_cli("demo", "--quick", "--out", out)
    assert r.exit_code == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("next: ")]
    assert len(lines) == 1
    argv = shlex.split(lines[0].removeprefix("next: "))
    assert argv[:2] == ["dynamo-plan", "simulate"] and argv[-1] == "--compare"
    assert argv[argv.index("--profile") + 1] == str(out / "profile")
    assert (out / "profile").is_dir()
