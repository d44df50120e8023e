"""``dynamo-plan doctor``: is this cluster ready for Dynamo and the planner? One line per check."""

from __future__ import annotations

from contextlib import suppress
from typing import Annotated

import typer
from rich.console import Group
from rich.markup import escape
from rich.text import Text

from dynamo_plan.adapters.kubernetes import KubeClient
from dynamo_plan.cli.options import ContextOption, KubeconfigOption, NamespaceOption
from dynamo_plan.cli.output import OutputFormat, OutputOption, emit
from dynamo_plan.deploy.doctor import DEFAULT_PULL_SECRET, Check, run_checks
from dynamo_plan.errors import ClusterError, MetricsError

_MARK = {True: "[green]✓[/]", False: "[red]✗[/]", None: "[dim]–[/]"}


def _table(checks: list[Check]) -> Group:
    lines = []
    for c in checks:
        line = f"{_MARK[c.ok]} {escape(c.name)}: {escape(c.detail)}"
        if c.ok is False and c.fix:
            line += f"\n    [yellow]fix:[/] {escape(c.fix)}"
        lines.append(Text.from_markup(line))
    return Group(*lines)


def doctor(
    namespace: NamespaceOption = None,
    context: ContextOption = None,
    kubeconfig: KubeconfigOption = None,
    prometheus_url: Annotated[
        str | None,
        typer.Option(
            "--prometheus-url",
            metavar="URL",
            envvar="PROMETHEUS_ENDPOINT",
            help="Prometheus base URL to probe (GET /-/ready, 2 s); skipped when not given.",
        ),
    ] = None,
    image_pull_secret: Annotated[
        str,
        typer.Option(
            "--image-pull-secret",
            metavar="NAME",
            help='Secret that must exist in the namespace ("" skips).',
        ),
    ] = DEFAULT_PULL_SECRET,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Check the cluster: reachable, Dynamo CRDs, GPUs, pull secret, Prometheus, planner RBAC,
    stuck DGDRs. Exit 3 when the cluster or Prometheus gives no usable answer, else 1 when any
    check fails (✗); skipped checks (–) do not fail."""
    client = KubeClient(kubeconfig=kubeconfig, context=context, retries=1, request_timeout_s=5.0)
    with suppress(ClusterError):  # an unreachable cluster is reported by the first check
        client.connect()
    checks = run_checks(
        client, namespace or client.default_namespace, prometheus_url, image_pull_secret
    )
    ok = all(c.ok is not False for c in checks)
    emit({"checks": [c.row() for c in checks], "ok": ok}, output, table=lambda: _table(checks))
    down = [c.name for c in checks if c.ok is False and c.unreachable]
    if down:  # the cluster or Prometheus did not answer: an outside service failed (exit 3)
        error = MetricsError if down == ["prometheus"] else ClusterError
        raise error(f"doctor: no usable answer from {', '.join(down)} (see the report)")
    if not ok:
        raise typer.Exit(1)
