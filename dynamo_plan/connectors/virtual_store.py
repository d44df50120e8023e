"""Pick the virtual connector's state store from the command line's choice: a file or etcd."""

from __future__ import annotations

from pathlib import Path

from dynamo_plan.adapters.etcd import EtcdClient, EtcdStateStore
from dynamo_plan.adapters.state_file import FileStateStore
from dynamo_plan.adapters.virtual_state import StateStore
from dynamo_plan.errors import InputError, UsageError

__all__ = ["make_store"]


def make_store(
    state_file: Path | None, etcd_url: str | None, namespace: str = "default"
) -> StateStore:
    """A :class:`FileStateStore` at ``state_file`` or an :class:`EtcdStateStore` at ``etcd_url``
    (keys ``v1/<namespace>/planner/``); exactly one must be given (``UsageError`` otherwise;
    ``InputError`` for a URL without http(s):// or a namespace with '/'). No I/O."""
    if (state_file is None) == (etcd_url is None):
        which = "both were given" if state_file is not None else "neither was given"
        raise UsageError(
            f"the virtual state lives in a file (--state FILE) or in etcd (--etcd URL): give "
            f"exactly one, {which}"
        )
    if state_file is not None:
        return FileStateStore(state_file)
    assert etcd_url is not None
    if not etcd_url.startswith(("http://", "https://")):
        raise InputError(f"--etcd must be an http:// or https:// URL, got {etcd_url!r}")
    if not namespace or "/" in namespace:
        raise InputError(f"--namespace must be non-empty and contain no '/', got {namespace!r}")
    return EtcdStateStore(EtcdClient(etcd_url), namespace)
