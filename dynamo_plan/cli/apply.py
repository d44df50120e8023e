"""``dynamo-plan apply`` and ``dynamo-plan delete``: manifests to the cluster (server-side apply)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console, Group
from rich.text import Text

from dynamo_plan.adapters.kubernetes import KubeClient
from dynamo_plan.cli.options import ContextOption, KubeconfigOption, NamespaceOption
from dynamo_plan.cli.output import OutputFormat, OutputOption, emit, err_console
from dynamo_plan.deploy.apply import (
    DryRun,
    ManifestObject,
    Outcome,
    ReadyState,
    apply_objects,
    changed,
    delete_objects,
    preview_objects,
    read_manifest,
    wait_ready,
)
from dynamo_plan.errors import UsageError

FileArg = Annotated[
    Path,
    typer.Argument(
        metavar="FILE", help="Manifest: one or more YAML documents (DGD, DGDR, ConfigMap, RBAC)."
    ),
]
DryRunOption = Annotated[
    DryRun | None,
    typer.Option(
        "--dry-run",
        metavar="MODE",
        help="client: read live objects and compute locally; server: the API server computes "
        "(dryRun=All). Nothing is stored.",
    ),
]


def _lines(outcomes: list[Outcome], dry_run: DryRun | None) -> Group:
    tag = f" ({dry_run.value} dry run)" if dry_run is not None else ""
    style = {
        "created": "green",
        "configured": "yellow",
        "deleted": "red",
        "unchanged": "dim",
        "skipped": "magenta",
    }
    texts = []
    for o in outcomes:
        if o.diff:
            texts.append(Text(o.diff.rstrip("\n")))
        note = f" ({o.note})" if o.note else ""
        texts.append(
            Text.assemble(
                f"{o.kind}/{o.name} -n {o.namespace} ", (o.action, style[o.action]), tag, note
            )
        )
    return Group(*texts)


def _client(kubeconfig: Path | None, context: str | None) -> KubeClient:
    return KubeClient(kubeconfig=kubeconfig, context=context).connect()


def _load(client: KubeClient, file: Path, namespace: str | None) -> list[ManifestObject]:
    return read_manifest(file, namespace, client.default_namespace)


def _progress(
    timeout_s: float, poll_s: float, client: KubeClient, objects: list[ManifestObject]
) -> None:
    """Follow the Ready condition of every DGD: a live spinner on a terminal, one line per change."""
    seen: dict[str, str] = {}
    with err_console.status("waiting for DynamoGraphDeployments to be Ready…") as status:

        def on_poll(states: list[ReadyState]) -> None:
            ready = sum(s.ready for s in states)
            status.update(
                f"Ready {ready}/{len(states)} · "
                + " · ".join(
                    f"{s.ref.split(' ')[0]}: {'✓' if s.ready else s.summary()}" for s in states
                )
            )
            for s in states:
                line = "Ready" if s.ready else s.summary()
                if seen.get(s.ref) != line:
                    seen[s.ref] = line
                    mark = "[green]✓[/]" if s.ready else "[yellow]…[/]"
                    err_console.print(f"{mark} {s.ref}: {line}", markup=True, highlight=False)

        wait_ready(client, objects, timeout_s, poll_s=poll_s, on_poll=on_poll)


def apply(
    file: FileArg,
    namespace: NamespaceOption = None,
    context: ContextOption = None,
    kubeconfig: KubeconfigOption = None,
    dry_run: DryRunOption = None,
    diff: Annotated[
        bool,
        typer.Option(
            "--diff",
            help="Preview only: a unified diff of live vs applied per object and how many would "
            "change (a server dry run, or --dry-run's); nothing is applied. Add --apply to apply.",
        ),
    ] = False,
    apply_after: Annotated[
        bool,
        typer.Option("--apply", help="With --diff: print the preview, then apply the objects."),
    ] = False,
    force_conflicts: Annotated[
        bool,
        typer.Option("--force-conflicts", help="Take over fields that another field manager owns."),
    ] = False,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Wait for every DynamoGraphDeployment to be Ready."),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", metavar="S", help="Seconds --wait waits before exit 3.")
    ] = 1800.0,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", metavar="S", help="Seconds between --wait polls.")
    ] = 2.0,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Server-side apply every document of FILE with field manager 'dynamo-plan'.

    A field owned by another manager (e.g. the planner's replicas) is a conflict (exit 1) unless
    --force-conflicts. --diff only previews (like kubectl diff; exit 0 with or without changes);
    --diff --apply previews, then applies. Unreachable cluster, timeout of --wait: exit 3.
    """
    if apply_after and not diff:
        raise UsageError("--apply goes with --diff (without --diff, apply applies anyway)")
    if apply_after and dry_run is not None:
        raise UsageError("--apply cannot be combined with --dry-run (a dry run applies nothing)")
    if wait and dry_run is not None:
        raise UsageError("--wait cannot be combined with --dry-run (nothing is applied)")
    if wait and diff and not apply_after:
        raise UsageError("--wait cannot be combined with a --diff preview (add --apply to apply)")
    if timeout <= 0 or poll_interval <= 0:
        raise UsageError("--timeout and --poll-interval must be > 0 seconds")
    client = _client(kubeconfig, context)
    objects = _load(client, file, namespace)
    if diff:
        mode = dry_run or DryRun.server
        preview = preview_objects(client, objects, mode, force=force_conflicts)
        summary = f"{changed(preview)} of {len(preview)} object(s) would change"
        if not apply_after:
            note = Text(f"{summary}; nothing applied (add --apply to apply)", "bold")
            emit(
                [o.row() for o in preview], output, table=lambda: Group(_lines(preview, mode), note)
            )
            return
        if output is OutputFormat.table:  # the preview first: it stays on screen if apply fails
            diffs = [Text(o.diff.rstrip("\n")) for o in preview if o.diff]
            Console(soft_wrap=True).print(Group(*diffs, Text(f"{summary}; applying", "bold")))
        applied = apply_objects(client, objects, force=force_conflicts)
        outcomes = [replace(o, diff=p.diff) for o, p in zip(applied, preview, strict=True)]
        shown = applied  # their diffs were printed before applying
    else:
        outcomes = apply_objects(client, objects, dry_run, force=force_conflicts)
        shown = outcomes

    def table() -> Group:
        group = _lines(shown, dry_run)
        if dry_run is DryRun.client:
            docs = yaml.safe_dump_all([o.body for o in objects], sort_keys=False)
            return Group(Text(docs.rstrip("\n")), Text("---"), group)
        return group

    emit([o.row() for o in outcomes], output, table=table)
    if wait:
        _progress(timeout, poll_interval, client, objects)


def delete(
    file: FileArg,
    namespace: NamespaceOption = None,
    context: ContextOption = None,
    kubeconfig: KubeconfigOption = None,
    dry_run: DryRunOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Delete every object of FILE (last document first); absent objects are 'unchanged'.

    Only objects dynamo-plan created are deleted: the live object must carry the label
    app.kubernetes.io/managed-by=dynamo-plan (and the manifest's dynamo-plan/dgd, when it has
    one, as generate-dgd writes). Any other is left in place and reported 'skipped'.
    """
    client = _client(kubeconfig, context)
    objects = _load(client, file, namespace)
    outcomes = delete_objects(client, objects, dry_run)
    emit([o.row() for o in outcomes], output, table=lambda: _lines(outcomes, dry_run))
