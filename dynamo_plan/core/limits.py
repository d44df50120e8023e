"""Sanity bounds on inputs shared by several layers, in a module that imports nothing (the
adapters, the estimator and the profiler read them without importing one another).
"""

from __future__ import annotations

__all__ = ["MAX_GPUS_PER_NODE"]

#: Most GPUs one engine's tensor parallelism can span: TP all-reduces every layer, so it stays
#: inside one NVLink domain, and the largest in the GPU catalogue is GB200 NVL72's 72 GPUs (an
#: HGX H100/H200/B200 node has 8). ``--tp`` (and the largest TP a sweep tries), and a profile's
#: recorded ``gpus_per_engine``, above it are refused.
MAX_GPUS_PER_NODE = 72
