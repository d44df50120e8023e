"""Configuration of one simulated disaggregated deployment (:class:`SimConfig`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from dynamo_plan.errors import InputError

__all__ = ["SimConfig"]

#: KV-cache bytes per token of Llama-3.1-8B with a bf16 cache: 32 layers · 8 KV heads · 128 dims
#: · 2 (K and V) · 2 bytes.
LLAMA3_8B_KV_BYTES_PER_TOKEN = 32 * 8 * 128 * 2 * 2


@dataclass(frozen=True)
class SimConfig:
    """How the simulated cluster behaves.

    * ``interval_s`` — seconds between policy decisions (the planner's adjustment interval).
    * ``startup_s`` — seconds from ordering a replica to its serving; its GPUs are paid from the
      order.
    * ``prefill_gpus`` / ``decode_gpus`` — GPUs per engine (cost only: the profile already
      describes one engine at its parallelism).
    * ``prefill_token_budget`` — most prompt tokens one prefill step batches (a longer prompt runs
      alone).
    * KV transfer of a request with ``isl`` tokens takes ``kv_transfer_latency_ms / 1000 +
      isl · kv_bytes_per_token · 8 / (kv_transfer_gbps · 1e9)`` seconds (``kv_transfer_gbps`` in
      Gbit/s; the default bytes/token are Llama-3-8B with a bf16 cache).
    * ``max_decode_batch`` — most requests one decode engine runs at once (None: KV-bound only).
    * ``seed`` — seeds the tie-break order among equally loaded engines (each engine draws a
      random rank when it is created); the simulation is otherwise deterministic.
    """

    interval_s: float = 60.0
    startup_s: float = 60.0
    prefill_gpus: int = 1
    decode_gpus: int = 1
    prefill_token_budget: int = 16384
    kv_transfer_latency_ms: float = 1.0
    kv_transfer_gbps: float = 400.0
    kv_bytes_per_token: float = float(LLAMA3_8B_KV_BYTES_PER_TOKEN)
    seed: int = 0
    max_decode_batch: int | None = None

    def __post_init__(self) -> None:
        positive = ("interval_s", "kv_transfer_gbps")
        non_negative = ("startup_s", "kv_transfer_latency_ms", "kv_bytes_per_token")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in positive and not (math.isfinite(value) and value > 0):
                raise InputError(f"SimConfig.{f.name} must be > 0, got {value!r}")
            if f.name in non_negative and not (math.isfinite(value) and value >= 0):
                raise InputError(f"SimConfig.{f.name} must be >= 0, got {value!r}")
        for name in ("prefill_gpus", "decode_gpus", "prefill_token_budget"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise InputError(f"SimConfig.{name} must be an integer >= 1, got {value!r}")
        if self.max_decode_batch is not None and self.max_decode_batch < 1:
            raise InputError(
                f"SimConfig.max_decode_batch must be >= 1 or None, got {self.max_decode_batch}"
            )

    def kv_transfer_s(self, isl: float) -> float:
        """Seconds to move the KV cache of ``isl`` prompt tokens from prefill to decode."""
        bits = float(isl) * self.kv_bytes_per_token * 8.0
        return self.kv_transfer_latency_ms / 1000.0 + bits / (self.kv_transfer_gbps * 1e9)
