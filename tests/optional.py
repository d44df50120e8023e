"""Optional pieces the tests use: the AI Configurator package and the image build tools.

Outside the project's test command a developer may lack them, and the tests that need them are
skipped with the reason. The test command (``scripts/test.sh``) installs them and sets
``DYNAMO_PLAN_TEST_EVERYTHING=1``: there an absent piece is a failure, never a silent skip, so CI
always runs what these tests check.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

#: Set by scripts/test.sh: every optional piece is installed, so none may be skipped.
EVERYTHING = os.environ.get("DYNAMO_PLAN_TEST_EVERYTHING") == "1"


def missing(reason: str) -> NoReturn:
    """Skip for ``reason`` — or fail, under the test command, which installs the piece."""
    if EVERYTHING:
        pytest.fail(f"{reason}, but scripts/test.sh installs it: the set-up is broken")
    pytest.skip(reason)


def needs(available: bool, reason: str) -> pytest.MarkDecorator:
    """A mark: skip for ``reason`` when not ``available``, except under the test command, where
    the test runs (and fails on what is missing)."""
    return pytest.mark.skipif(not available and not EVERYTHING, reason=reason)
