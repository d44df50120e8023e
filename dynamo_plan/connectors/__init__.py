"""Connectors: how a planner decision reaches the world (observe-only, virtual, Kubernetes).

See :mod:`dynamo_plan.connectors.base` for the interface every connector implements.
"""
