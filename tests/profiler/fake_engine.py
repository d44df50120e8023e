"""A small roofline-like engine implementing the sweep's EngineModel protocol, for tests.

Latency = weight read + KV read (memory bound) + compute, per TP; throughput/GPU follows. Not a
performance model of anything real: only its shape matters (TTFT and ITL fall with TP, ITL rises
with batch and context, throughput/GPU falls with TP).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FakePoint:
    latency_ms: float
    thpt_per_gpu: float


@dataclass(frozen=True)
class FakeEngine:
    weight_gb: float = 16.0  # GB of weights
    gpu_mem_gb: float = 141.0
    bandwidth_gbs: float = 4800.0
    tflops: float = 990.0
    params_b: float = 8.0  # billions of parameters
    kv_bytes_per_token: float = 131072.0
    comm_ms_per_tp: float = 0.02
    name: str = "fake"
    version: str = "0"

    def fits(self, tp: int) -> bool:
        return self.weight_gb / tp < 0.8 * self.gpu_mem_gb

    def max_kv_tokens(self, tp: int) -> int:
        free_gb = 0.9 * self.gpu_mem_gb * tp - self.weight_gb
        return max(0, int(free_gb * 1e9 / self.kv_bytes_per_token))

    def _overhead(self, tp: int) -> float:
        return self.comm_ms_per_tp * (tp - 1)

    def prefill(self, tp: int, isl: int) -> FakePoint:
        compute = 2 * self.params_b * 1e9 * isl / (0.5 * self.tflops * 1e12 * tp) * 1e3
        memory = self.weight_gb / tp / self.bandwidth_gbs * 1e3
        ms = max(compute, memory) + 4 * self._overhead(tp) + 1.0
        return FakePoint(ms, isl / (ms / 1e3) / tp)

    def decode(self, tp: int, batch: int, context: int) -> FakePoint:
        read_gb = (self.weight_gb + batch * context * self.kv_bytes_per_token / 1e9) / tp
        memory = read_gb / self.bandwidth_gbs * 1e3
        compute = 2 * self.params_b * 1e9 * batch / (0.5 * self.tflops * 1e12 * tp) * 1e3
        ms = max(memory, compute) + self._overhead(tp) + 0.5
        return FakePoint(ms, batch / (ms / 1e3) / tp)
