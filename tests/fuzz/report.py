"""Run the bad-input case table and print per-class counts: ``python -m tests.fuzz.report``.

Columns: cases, passed, and the failures by kind — tracebacks, hangs, wrong exit codes, partial
files (tests/fuzz/harness.py), plus unreadable error messages and failed extra checks. Failing
cases are listed after the table with what went wrong. Options: ``--class NAME`` (repeatable),
``-k TEXT`` (cases whose id contains it), ``-j N`` (cases run at once, default 2). Exit 0 when
every case passed, else 1. The pytest run of the same table (tests/fuzz/test_fuzz_cases.py)
prints the same table at the end (tests/fuzz/conftest.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from tests.fuzz.harness import CLASSES, KINDS, Outcome, run_case

HEADERS = {
    "traceback": "tracebacks",
    "hang": "hangs",
    "exit": "wrong exit",
    "partial": "partial files",
    "message": "bad message",
    "check": "failed checks",
}


def counts_table(records: Iterable[tuple[str, set[str], float]]) -> str:
    """``records``: (class, kinds of problem found, seconds) per case run → the per-class count
    table (``seconds``: the cases' own run time, summed)."""
    rows: dict[str, dict[str, int]] = {}
    for cls, kinds, seconds in records:
        row = rows.setdefault(cls, {"cases": 0, "passed": 0, **dict.fromkeys(KINDS, 0), "s": 0})
        row["cases"] += 1
        row["passed"] += not kinds
        row["s"] += round(seconds)
        for kind in kinds:
            row[kind] += 1
    columns = ["cases", "passed", *KINDS, "s"]
    titles = ["class", "cases", "passed", *(HEADERS[k] for k in KINDS), "seconds"]
    order = [c for c in CLASSES if c in rows] + sorted(set(rows) - set(CLASSES))
    total = {col: sum(rows[c][col] for c in order) for col in columns}
    body = [[c, *(str(rows[c][col]) for col in columns)] for c in order]
    body.append(["total", *(str(total[col]) for col in columns)])
    widths = [max(len(r[i]) for r in [titles, *body]) for i in range(len(titles))]
    lines = ["  ".join(t.ljust(w) if i == 0 else t.rjust(w) for i, (t, w) in enumerate(zip(r, widths, strict=True))) for r in [titles, *body]]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(len(lines) - 1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def kinds_of(outcome: Outcome) -> set[str]:
    return {k for k, msgs in outcome.problems.items() if msgs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.report", description=__doc__)
    parser.add_argument("--class", dest="classes", action="append", choices=CLASSES)
    parser.add_argument("-k", dest="keyword", default="")
    parser.add_argument("-j", dest="jobs", type=int, default=2)
    parser.add_argument("-q", dest="quiet", action="store_true", help="no per-case lines")
    args = parser.parse_args(argv)

    from tests.fuzz.table import CASES
    from tests.fuzz.world import world

    cases = [
        c for c in CASES if (not args.classes or c.cls in args.classes) and args.keyword in c.id
    ]
    start = time.monotonic()
    outcomes: list[Outcome] = []
    with world() as w, ThreadPoolExecutor(max(1, args.jobs)) as pool:
        for outcome in pool.map(lambda c: run_case(c, w), cases):
            outcomes.append(outcome)
            if not args.quiet:
                mark = "ok  " if outcome.ok else "FAIL"
                print(f"{mark} {outcome.case.id} (exit {outcome.run.exit_code}, "
                      f"{outcome.run.elapsed_s:.1f} s)", flush=True)  # fmt: skip
    print()
    print(counts_table((o.case.cls, kinds_of(o), o.run.elapsed_s) for o in outcomes))
    print(f"\n{len(outcomes)} cases in {time.monotonic() - start:.0f} s")
    failed = [o for o in outcomes if not o.ok]
    if failed:
        print(f"\n{len(failed)} failing case(s):")
        for outcome in failed:
            print(outcome.summary())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
