"""Fuzzing ``dgdr validate`` with mutated example DGDRs (the FILE_COMMANDS fuzz feeds it traces).

Contract as in tests/fuzz: exit 0 or 1, on 1 one ``error:`` line on stderr, never a traceback;
the JSON on stdout always parses and names a path and message for each error.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import run_cli
from tests.fuzz.test_fuzz_inputs import FUZZ_SETTINGS, MUTATIONS, check_outcome, mutate

EXAMPLES = sorted((Path(__file__).parent / "examples").glob("*.yaml"))
YAMLY = [b":", b"- ", b"  ", b"\t", b"{", b"[", b"&a ", b"*a", b"!!binary ", b"<<: *a", b"---\n"]


@FUZZ_SETTINGS
@given(
    example=st.sampled_from(EXAMPLES),
    ops=st.lists(MUTATIONS, min_size=1, max_size=6),
    extra=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(YAMLY)), max_size=3),
)
def test_mutated_examples(example: Path, ops: list[tuple[str, int, object]], extra: list) -> None:
    content = mutate(example.read_bytes(), ops + [("inject", at, b) for at, b in extra])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "dgdr.yaml"
        path.write_bytes(content)
        result = run_cli("dgdr", "validate", path, "-o", "json")
        check_outcome("dgdr validate", result)
        [report] = result.json()
        assert report["valid"] is (result.exit_code == 0)
        assert all(e["message"] and isinstance(e["path"], str) for e in report["errors"])
