"""dynamo-plan: SLA-driven sizing and planning for disaggregated LLM inference (NVIDIA Dynamo compatible)."""

__version__ = "0.1.0"
