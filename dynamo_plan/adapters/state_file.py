"""The virtual connector's state in one JSON file (the embedded default store).

The file holds one JSON object with the four fields of
:class:`~dynamo_plan.adapters.virtual_state.VirtualState`::

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

from dynamo_plan.adapters.virtual_state import FIELD_MINIMUMS, NO_DECISION, VirtualState
from dynamo_plan.errors import DynamoPlanError, InputError, StateStoreError
from dynamo_plan.formats.files import decode_text, read_text, resolve_output, write_text_atomic

__all__ = ["FileStateStore"]


class FileStateStore:
    """Virtual state in the JSON file ``path`` (see the module docstring). No I/O on construction;
    the file and ``<path>.lock`` are created by the first write (the directory must exist)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.location = str(self.path)

    def check(self, writable: bool = True) -> None:
        """Preflight, the command's first step (before a tick or a request is served): can this
        path hold the state? :class:`InputError` (exit 1, one line) when it is a directory, its
        folder does not exist or (``writable``) cannot take a new file, or a file already there
        is not a state (not readable, not UTF-8, not JSON, a bad field). Writes nothing that
        stays: the folder is probed with a temporary file, removed at once.

        Later, while running, the same faults are :class:`StateStoreError` (the store failed;
        the planner logs them and retries)."""
        if writable:  # a directory, a device, a missing folder, a link loop (as a write would)
            try:
                target = resolve_output(self.path, InputError)
            except InputError as e:
                raise InputError(f"virtual state: {e}") from e
        elif self.path.is_dir():
            raise InputError(f"virtual state {self.path} is a directory, expected a file")
        else:
            target = self.path
        if target.exists():
            self._parse(read_text(self.path, "virtual state file"), InputError)
        if not writable:
            return
        try:  # what the first write does: a temporary file beside the target
            fd, probe = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
            )
        except OSError as e:
            raise InputError(
                f"cannot write virtual state {self.path}: folder {target.parent}: {e.strerror or e}"
            ) from e
        os.close(fd)
        os.unlink(probe)
        if self.lock_path.exists() and not os.access(self.lock_path, os.R_OK | os.W_OK):
            raise InputError(f"cannot write virtual state lock {self.lock_path}: permission denied")

    def read(self) -> VirtualState | None:
        """The state now; ``None`` when the file does not exist. No lock needed: the file is only
        ever replaced whole."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StateStoreError(f"{self.path}: cannot read: {e.strerror or e}") from e
        try:
            text = decode_text(raw, str(self.path))
        except InputError as e:
            raise StateStoreError(str(e)) from e
        return self._parse(text)

    def _parse(self, text: str, error: type[DynamoPlanError] = StateStoreError) -> VirtualState:
        """``text`` as a state; ``error`` (StateStoreError while running, InputError in
        :meth:`check`) naming the file and the first problem otherwise."""
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError as e:
            raise error(
                f"{self.path}:{e.lineno}: not valid JSON: {e.msg} (column {e.colno})"
            ) from e
        except ValueError as e:  # e.g. an integer of more digits than Python converts
            raise error(f"{self.path}: not valid JSON: {e}") from e
        if not isinstance(data, dict):
            raise error(
                f"{self.path}: expected a JSON object with {', '.join(FIELD_MINIMUMS)}, "
                f"got {type(data).__name__}"
            )
        values: dict[str, int] = {}
        for field, minimum in FIELD_MINIMUMS.items():
            if field not in data:
                if field == "scaled_decision_id":
                    values[field] = NO_DECISION
                    continue
                raise error(f"{self.path}: field '{field}' is missing")
            value = data[field]
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise error(
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
        """Replace the file by ``state`` atomically with ``formats.files.write_text_atomic``
        (temp file, fsync, ``os.replace``; a symbolic link's target is replaced, a directory or
        a device is refused)."""
        write_text_atomic(self.path, json.dumps(asdict(state), indent=2) + "\n", StateStoreError)

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
