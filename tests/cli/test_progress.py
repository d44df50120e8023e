"""Progress of long work on stderr off a terminal: plain lines, at most one every few seconds
(``dynamo_plan.cli.progress_views``), wired into ``predict backtest`` and ``simulate``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dynamo_plan.cli import progress_views
from dynamo_plan.cli.progress_views import PlainProgress, task_progress
from tests.conftest import run_cli

SAMPLE = Path(__file__).resolve().parents[2] / "sample_traces" / "mooncake_conversation_10min.jsonl"
PROGRESS_LINE = re.compile(r"^(\w[\w -]*): (\d+)/(\d+) \((\d+)%\), \d+ s(, ~\d+ s left)?$")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_are_rate_limited() -> None:
    """100 steps, 0.5 s each: a line every 2 s (at most), with counts, percent and time left."""
    clock, lines = FakeClock(), []
    view = PlainProgress("backtest", 100, lines.append, every_s=2.0, clock=clock)
    for _ in range(100):
        clock.now += 0.5
        view.advance()
    view.finish()
    assert len(lines) == 100 * 0.5 / 2.0 + 1  # one per 2 s, and the last line
    assert lines[0] == "backtest: 4/100 (4%), 2 s, ~48 s left"
    assert lines[-2] == "backtest: 100/100 (100%), 50 s"
    assert lines[-1] == "backtest: done, 100 steps in 50 s"
    steps = [int(m.group(2)) for m in map(PROGRESS_LINE.match, lines[:-1]) if m]
    assert len(steps) == len(lines) - 1 and steps == sorted(steps)


def test_short_work_prints_nothing() -> None:
    clock, lines = FakeClock(), []
    view = PlainProgress("simulate", 1000, lines.append, every_s=2.0, clock=clock)
    for _ in range(1000):
        clock.now += 0.001
        view.advance()
    view.finish()
    assert lines == []


def test_long_durations_in_minutes() -> None:
    clock, lines = FakeClock(), []
    view = PlainProgress("profiling", 4, lines.append, every_s=2.0, clock=clock)
    clock.now += 125.0
    view.advance()
    assert lines == ["profiling: 1/4 (25%), 2 min 05 s, ~6 min 15 s left"]


def test_task_progress_off_a_terminal_writes_plain_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """stderr is not a terminal under pytest: no bar, plain lines (every step with a 0 s limit)."""
    monkeypatch.setattr(progress_views, "PLAIN_EVERY_S", 0.0)
    with task_progress("work", 3) as advance:
        for _ in range(3):
            advance()
    err = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in err[:3]] == [
        "work: 1/3 (33%)",
        "work: 2/3 (67%)",
        "work: 3/3 (100%)",
    ]
    assert err[3].startswith("work: done, 3 steps in ")


def test_backtest_shows_progress_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """``predict backtest`` (the README's second command) reports progress on stderr when stderr
    is not a terminal; the result on stdout stays clean JSON."""
    monkeypatch.setattr(progress_views, "PLAIN_EVERY_S", 0.0)
    result = run_cli(
        "predict", "backtest", SAMPLE, "--interval", "30", "--predictors", "constant",
        "--series", "count", "-o", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    lines = [m for m in map(PROGRESS_LINE.match, result.stderr.splitlines()) if m]
    assert lines and all(m.group(1) == "backtest" for m in lines)
    assert lines[-1].group(2) == lines[-1].group(3) == "20"  # 20 intervals, 1 predictor, 1 series
    assert result.json()["intervals"] == 20


def test_simulate_compare_shows_progress_off_a_terminal(
    monkeypatch: pytest.MonkeyPatch, shared_data: Path
) -> None:
    monkeypatch.setattr(progress_views, "PLAIN_EVERY_S", 0.0)
    profile = shared_data / "profiles" / "h200_llama3.1-8b-fp8_tp1p_tp1d"
    result = run_cli(
        "simulate", SAMPLE, "--profile", profile, "--ttft", "2000", "--itl", "25",
        "--compare", "-o", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    lines = [m for m in map(PROGRESS_LINE.match, result.stderr.splitlines()) if m]
    assert lines and all(m.group(1) == "simulate" for m in lines)
    assert lines[-1].group(4) == "100"
    assert len(result.json()) == 6  # every policy
