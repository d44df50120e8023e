"""The virtual connector's state in one JSON file (the embedded default store).

The file holds one JSON object with the four fields of
:class:`~dynamo_plan.connectors.virtual_state.VirtualState`::

    {"decision_id": 3, "num_prefill_workers": 2, "num_decode_workers": 4, "scaled_decision_id": 2}

Every change is a read-modify-write under an exclusive ``fcntl.flock`` on ``<path>.lock`` (so
planner and environment processes never lose each other's writes) and lands by an atomic replace
(temporary file in the same directory, ``fsync``, ``os.replace``): a reader sees the old or the
new state, never half of one, and a failed write leaves the old file as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from dynamo_plan.connectors.virtual_state import FIELD_MINIMUMS, NO_DECISION, VirtualState
from dynamo_plan.errors import StateStoreError

__all__ = ["FileStateStore"]


class FileStateStore:
    """Virtual state in the JSON file ``path`` (see the module docstring). No I/O on construction;
    the file and ``<path>.lock`` are created by the first write (the directory must exist)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.location = str(self.path)

    def read(self) -> VirtualState | None:
        """The state now; ``None`` when the file does not exist. No lock needed: the file is only
        ever replaced whole."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StateStoreError(f"{self.path}: cannot read: {e.strerror or e}") from e
        except UnicodeDecodeError as e:
            raise StateStoreError(
                f"{self.path}: not UTF-8 text (byte {e.start}: {e.reason})"
            ) from e
        return self._parse(text)

    def _parse(self, text: str) -> VirtualState:
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError as e:
            raise StateStoreError(
                f"{self.path}:{e.lineno}: not valid JSON: {e.msg} (column {e.colno})"
            ) from e
        except ValueError as e:  # e.g. an integer of more digits than Python converts
            raise StateStoreError(f"{self.path}: not valid JSON: {e}") from e
        if not isinstance(data, dict):
            raise StateStoreError(
                f"{self.path}: expected a JSON object with {', '.join(FIELD_MINIMUMS)}, "
                f"got {type(data).__name__}"
            )
        values: dict[str, int] = {}
        for field, minimum in FIELD_MINIMUMS.items():
            if field not in data:
                if field == "scaled_decision_id":
                    values[field] = NO_DECISION
                    continue
                raise StateStoreError(f"{self.path}: field '{field}' is missing")
            value = data[field]
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise StateStoreError(
                    f"{self.path}: field '{field}' must be an integer >= {minimum}, "
                    f"got {json.dumps(value)[:40]}"
                )
            values[field] = value
        return VirtualState(**values)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the exclusive lock on ``<path>.lock`` (blocks until other writers are done)."""
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StateStoreError(f"{self.lock_path}: cannot open lock: {e.strerror or e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _write(self, state: VirtualState) -> None:
        """Replace the file by ``state`` atomically (temp file, fsync, ``os.replace``)."""
        text = json.dumps(asdict(state), indent=2) + "\n"
        tmp: str | None = None
        try:
            fd, tmp = tempfile.mkstemp(
                prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
            )
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            tmp = None
        except OSError as e:
            raise StateStoreError(f"{self.path}: cannot write: {e.strerror or e}") from e
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def write_decision(self, decision_id: int, prefill: int, decode: int) -> None:
        """Write decision ``decision_id`` (0 when none is stored, else stored + 1: a failed check
        raises ``StateStoreError`` naming what is stored) and both counts; keeps
        ``scaled_decision_id``."""
        with self._locked():
            current = self.read()
            stored = NO_DECISION if current is None else current.decision_id
            if decision_id != stored + 1:
                found = "no decision" if current is None else f"decision {stored}"
                raise StateStoreError(
                    f"{self.path}: decision {decision_id} not written: expected decision "
                    f"{decision_id - 1} stored, found {found} (another planner wrote it?)"
                )
            scaled = NO_DECISION if current is None else current.scaled_decision_id
            self._write(VirtualState(decision_id, prefill, decode, scaled))

    def acknowledge(self, decision_id: int) -> None:
        """Set ``scaled_decision_id`` (the environment's side); ``StateStoreError`` when nothing
        was decided yet."""
        with self._locked():
            current = self.read()
            if current is None:
                raise StateStoreError(
                    f"{self.path}: cannot acknowledge decision {decision_id}: no decision stored"
                )
            self._write(replace(current, scaled_decision_id=decision_id))
