"""The one error tree of dynamo-plan.

Every failure the user can cause or meet is one of these; foreign exceptions are translated at
the boundary (``raise InputError(...) from e``). The CLI catches :class:`DynamoPlanError` once,
prints one red line and exits with the class's ``exit_code``::

    DynamoPlanError                      exit 1  (base; never raised directly)
    ├── InputError                       exit 1  bad file, value or flag
    │   └── MissingExtraError            exit 1  an optional extra (e.g. prophet) is not installed
    ├── UsageError                       exit 2  flags that contradict each other
    ├── ExternalServiceError             exit 3  an outside service failed
    │   ├── ClusterError                         Kubernetes API
    │   ├── MetricsError                         Prometheus
    │   ├── StateStoreError                      etcd / virtual-connector state
    │   └── EndpointError                        an OpenAI-compatible endpoint failed
    └── InfeasibleSLAError               exit 4  no configuration meets the SLA

Exit code 0 is success; 2 is also what Typer/Click use for their own usage errors.
"""

from __future__ import annotations

__all__ = [
    "ClusterError",
    "DynamoPlanError",
    "EndpointError",
    "ExternalServiceError",
    "InfeasibleSLAError",
    "InputError",
    "MetricsError",
    "MissingExtraError",
    "StateStoreError",
    "UsageError",
]


class DynamoPlanError(Exception):
    """Root of every error dynamo-plan raises on purpose."""

    exit_code: int = 1


class InputError(DynamoPlanError):
    """Invalid input: a file, a value or a flag. Say where (file, line, field) and what was expected."""

    exit_code = 1


class MissingExtraError(InputError):
    """An optional dependency is absent; the message names the extra that brings it."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package: pip install 'dynamo-plan[{extra}]'"
        )
        self.package = package
        self.extra = extra


class UsageError(DynamoPlanError):
    """Flags or arguments that cannot go together."""

    exit_code = 2


class ExternalServiceError(DynamoPlanError):
    """A service outside this process failed (cluster, Prometheus, etcd, an inference endpoint)."""

    exit_code = 3


class ClusterError(ExternalServiceError):
    """The Kubernetes API failed or refused.

    ``status``: the HTTP status of the answer (e.g. 403), None when there was none (unreachable
    server, bad kubeconfig, a timeout waiting for a condition); ``reason``: the ``reason`` of the
    server's ``Status`` object (``Forbidden``, ``NotFound``), else the HTTP reason phrase. Test
    these, never the message text.
    """

    def __init__(self, message: str, status: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class MetricsError(ExternalServiceError):
    """Prometheus failed or answered something unusable."""


class StateStoreError(ExternalServiceError):
    """The planner's state store (etcd or the state file) failed."""


class EndpointError(ExternalServiceError):
    """An OpenAI-compatible endpoint cannot be reached or answers something unusable."""


class InfeasibleSLAError(DynamoPlanError):
    """No configuration within the limits meets the SLA."""

    exit_code = 4
