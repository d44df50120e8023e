"""make_store: exactly one of a state file or an etcd URL, checked before any I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynamo_plan.adapters.etcd import EtcdStateStore
from dynamo_plan.adapters.state_file import FileStateStore
from dynamo_plan.connectors.virtual_store import make_store
from dynamo_plan.errors import InputError, UsageError


def test_file_or_etcd(tmp_path: Path) -> None:
    file_store = make_store(tmp_path / "s.json", None)
    assert isinstance(file_store, FileStateStore)
    etcd_store = make_store(None, "http://127.0.0.1:1", "prod")
    assert isinstance(etcd_store, EtcdStateStore)
    assert etcd_store.prefix == "v1/prod/planner/"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("state", "etcd", "match"),
    [(None, None, "neither was given"), (Path("s.json"), "http://x:1", "both were given")],
)
def test_exactly_one_store(state: Path | None, etcd: str | None, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        make_store(state, etcd)


@pytest.mark.parametrize(
    ("url", "namespace", "match"),
    [("127.0.0.1:2379", "default", "--etcd must be an http"), ("http://x:1", "a/b", "--namespace")],
)
def test_bad_etcd_settings(url: str, namespace: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        make_store(None, url, namespace)
