"""The serving engines (DGDR ``spec.backend``), declared once, in the one order every message,
schema and ``--help`` lists them: vllm, sglang, trtllm. Imports nothing, so ``--help`` stays
quick.

* :class:`Backend` — the choices (a ``StrEnum``: each member is its name as a string; the CLI's
  ``--backend`` choices).
* :data:`BackendName` — the same names as a ``Literal`` type, for typed parameters that take a
  plain string (the estimator's ``backend="vllm"``).
* :data:`BACKENDS` — the names as a tuple of strings, for membership tests and messages.

``schemas/dgdr.schema.json`` lists them in the same order (tests/core/test_backends.py checks it).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, TypeAlias, get_args

__all__ = ["BACKENDS", "Backend", "BackendName"]


class Backend(StrEnum):
    """A serving engine with a DGD template and a TP flag."""

    vllm = "vllm"
    sglang = "sglang"
    trtllm = "trtllm"


BackendName: TypeAlias = Literal["vllm", "sglang", "trtllm"]
#: ``("vllm", "sglang", "trtllm")``; equal to ``tuple(Backend)`` (a test holds them together)
BACKENDS: tuple[BackendName, ...] = get_args(BackendName)
