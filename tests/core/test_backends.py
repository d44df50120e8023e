"""One list of backends: the enum, the ``Literal`` and the DGDR schema agree, in one order."""

from __future__ import annotations

import json

from dynamo_plan.core.backends import BACKENDS, Backend
from dynamo_plan.resources import shipped_file


def test_one_order_everywhere() -> None:
    assert BACKENDS == ("vllm", "sglang", "trtllm")
    assert tuple(Backend) == BACKENDS
    schema = json.loads(shipped_file("schemas", "dgdr.schema.json").read_text(encoding="utf-8"))
    spec = schema["properties"]["spec"]["properties"]
    engine = spec["profilingConfig"]["properties"]["config"]["properties"]["engine"]
    assert spec["backend"]["enum"] == list(BACKENDS)
    assert engine["properties"]["backend"]["enum"] == list(BACKENDS)
