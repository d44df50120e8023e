"""``dynamo-plan virtual``: the environment's side of the virtual connector: read, wait for and
complete decisions (state in a JSON file with ``--state`` or in etcd with ``--etcd``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dynamo_plan.cli.output import OutputFormat, OutputOption, emit, simple_table

if TYPE_CHECKING:  # the stores (etcd's HTTP client) are imported when a command runs
    from dynamo_plan.adapters.virtual_state import VirtualState
    from dynamo_plan.connectors.virtual_client import VirtualClient

app = typer.Typer(
    help="The environment's side of the virtual connector: read, wait for and complete decisions.",
    no_args_is_help=True,
)

StateOption = Annotated[
    Path | None,
    typer.Option(
        "--state", metavar="FILE", help="Virtual state JSON file (written atomically, flock'ed)."
    ),
]
EtcdOption = Annotated[
    str | None,
    typer.Option(
        "--etcd", metavar="URL", help="etcd URL (v3 HTTP gateway), e.g. http://127.0.0.1:2379."
    ),
]
EtcdNamespaceOption = Annotated[
    str,
    typer.Option(
        "--namespace", metavar="NS", help="etcd key namespace: keys v1/<NS>/planner/<field>."
    ),
]


def _client(
    state: Path | None, etcd: str | None, namespace: str, writes: bool = False
) -> VirtualClient:
    """The client over the chosen store; a state file is checked first (InputError, exit 1,
    for a directory, a file that is not a state, or — when the command ``writes`` — a folder
    that cannot take it), so a wrong file is bad input rather than a store failure (exit 3)."""
    from dynamo_plan.connectors.virtual_client import VirtualClient
    from dynamo_plan.connectors.virtual_store import make_store

    store = make_store(state, etcd, namespace)
    store.check(writable=writes)  # the file store; etcd is only known by asking it
    return VirtualClient(store)


def _render(client: VirtualClient, state: VirtualState | None, fmt: OutputFormat) -> None:
    from dynamo_plan.adapters.virtual_state import VirtualState

    fields = (
        dict.fromkeys(f.name for f in dataclasses.fields(VirtualState))
        if state is None
        else dataclasses.asdict(state)
    )
    data: dict[str, Any] = {
        "location": client.store.location,
        **fields,
        "acknowledged": None if state is None else state.acknowledged,
    }
    emit(data, fmt, table=lambda: simple_table(None, ["field", "value"], list(data.items())))


@app.command("get")
def get(
    state: StateOption = None,
    etcd: EtcdOption = None,
    namespace: EtcdNamespaceOption = "default",
    output: OutputOption = OutputFormat.table,
) -> None:
    """Print the planner's latest decision and whether it was carried out (fields empty when
    nothing was decided yet)."""
    client = _client(state, etcd, namespace)
    _render(client, client.get(), output)


@app.command("wait")
def wait(
    state: StateOption = None,
    etcd: EtcdOption = None,
    namespace: EtcdNamespaceOption = "default",
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", metavar="S", min=0.0, help="Give up after this many seconds (exit 3)."
        ),
    ] = 60.0,
    after_decision_id: Annotated[
        int | None,
        typer.Option(
            "--after-decision-id",
            metavar="ID",
            help="Wait for a decision newer than this id (default: any unacknowledged decision).",
        ),
    ] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Wait for a decision to carry out, then print it."""
    client = _client(state, etcd, namespace)
    _render(client, client.wait(timeout, after_decision_id), output)


@app.command("complete")
def complete(
    state: StateOption = None,
    etcd: EtcdOption = None,
    namespace: EtcdNamespaceOption = "default",
    decision_id: Annotated[
        int | None,
        typer.Option(
            "--decision-id", metavar="ID", help="Decision carried out (default: the latest)."
        ),
    ] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Acknowledge a decision as carried out (sets scaled_decision_id), then print the state."""
    client = _client(state, etcd, namespace, writes=True)
    _render(client, client.complete(decision_id), output)
