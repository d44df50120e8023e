"""GPU-free stand-in for a Dynamo frontend with prefill/decode workers (OpenAI-compatible HTTP).

:mod:`.cluster` plays the simulator's engine model in real time, :mod:`.server` serves it over
HTTP with :mod:`.frontend_metrics` at ``/metrics``, :mod:`.follow` makes it carry out a virtual
connector's decisions.
"""

from dynamo_plan.sim.mocker.cluster import MockCluster, MockRequest
from dynamo_plan.sim.mocker.follow import StoreFollower
from dynamo_plan.sim.mocker.frontend_metrics import FrontendMetrics
from dynamo_plan.sim.mocker.server import MockerServer

__all__ = ["FrontendMetrics", "MockCluster", "MockRequest", "MockerServer", "StoreFollower"]
