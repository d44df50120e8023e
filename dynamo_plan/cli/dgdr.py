"""``dynamo-plan dgdr``: validate, create, convert and run DynamoGraphDeploymentRequests.

Every DGDR is read into one model (:mod:`dynamo_plan.deploy.dgdr_model`): v1alpha1 as Dynamo 0.6
spells it (snake_case sweep keys), as 0.8.1+ spells it (camelCase, ``useMocker``), and v1beta1
(Dynamo 1.x). ``--dynamo-version`` picks the release written for (``create``, ``run``); without it,
a command that talks to a cluster uses the release of the installed DGDR CRD, else the newest."""

from __future__ import annotations

import contextlib
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Group
from rich.text import Text

from dynamo_plan.cli.options import (
    BACKEND,
    ISL,
    OSL,
    ContextOption,
    ItlOption,
    KubeconfigOption,
    ManifestFileOption,
    PlannerImageOption,
    TtftOption,
)
from dynamo_plan.cli.output import OutputFormat, OutputOption, emit, err_console
from dynamo_plan.core.releases import NEWEST_RELEASE, DynamoRelease
from dynamo_plan.errors import InputError, UsageError
from dynamo_plan.formats.files import is_stdout, output_dir, write_text_atomic

if TYPE_CHECKING:  # the validator (jsonschema) is imported when a command runs
    from dynamo_plan.deploy.dgdr import FileReport, Finding

app = typer.Typer(
    help="DynamoGraphDeploymentRequests (nvidia.com/v1alpha1 and v1beta1): validate, create, "
    "convert, run.",
    no_args_is_help=True,
)

#: ``--dynamo-version`` where a cluster may say it (None: the installed CRDs, else the newest)
ReleaseOption = Annotated[
    DynamoRelease | None,
    typer.Option(
        "--dynamo-version",
        metavar="VERSION",
        help="Dynamo release to write for: 0.6, 0.9 or 1.5. Default: the release of the cluster's "
        f"DGDR CRD when a cluster is used, else {NEWEST_RELEASE.value} (the newest supported).",
    ),
]


def _finding_line(file: str, finding: Finding, multi: bool) -> str:
    where = file if finding.line is None else f"{file}:{finding.line}"
    if finding.column is not None:
        where += f":{finding.column}"
    doc = f" [doc {finding.doc}]" if multi else ""
    path = finding.path or "(document)"
    return f"{where}:{doc} {path}: {finding.message}"


def _report_table(reports: list[FileReport]) -> Group:
    lines: list[Text] = []
    for report in reports:
        multi = report.documents > 1
        mark, style = ("✓", "green") if report.valid else ("✗", "red")
        counts = f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
        lines.append(Text.assemble((mark, style), f" {report.file}  ({counts})"))
        lines += [Text(f"  {_finding_line(report.file, f, multi)}", "red") for f in report.errors]
        lines += [
            Text(f"  {_finding_line(report.file, f, multi)} (warning)", "yellow")
            for f in report.warnings
        ]
    return Group(*lines)


@app.command("validate")
def validate(
    files: Annotated[
        list[Path],
        typer.Argument(metavar="FILE", help="DGDR YAML files (multi-document files too)."),
    ],
    output: OutputOption = OutputFormat.table,
) -> None:
    """Check DGDR files (v1alpha1 in either spelling, v1beta1) against the shipped schema of
    their apiVersion: field path, line and a fix for each problem.

    Unknown keys are warnings (with the nearest known name), so is deployMocker (read as
    useMocker); a field of the other apiVersion is an error naming its spelling there. Exit 1
    when any file is invalid.
    """
    from dynamo_plan.deploy.dgdr import validate_file

    reports = [validate_file(path) for path in files]
    emit([r.as_dict() for r in reports], output, table=lambda: _report_table(reports))
    invalid = sum(not r.valid for r in reports)
    if invalid:
        raise InputError(f"{invalid} of {len(reports)} file(s) invalid")


@app.command("create")
def create(
    model: Annotated[
        str, typer.Option("--model", metavar="MODEL", help="Model id (Hugging Face).")
    ],
    backend: Annotated[str, BACKEND],
    isl: Annotated[int, ISL],
    osl: Annotated[int, OSL],
    ttft: TtftOption,
    itl: ItlOption,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", metavar="NAME", help="metadata.name of the DGDR (default: from the model)."
        ),
    ] = None,
    profiler_image: Annotated[
        str | None,
        typer.Option(
            "--profiler-image",
            metavar="IMAGE",
            help="Container image of the profiling job (v1alpha1 default: the backend's runtime "
            "image of the release; v1beta1: spec.image, left to the operator when not given).",
        ),
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Profile with the estimator (no GPU jobs).")
    ] = False,
    system: Annotated[
        str | None,
        typer.Option("--system", metavar="SYSTEM", help="Estimator GPU system (with --offline)."),
    ] = None,
    auto_apply: Annotated[
        bool, typer.Option("--auto-apply", help="Create the DGD once profiling is done.")
    ] = False,
    use_mocker: Annotated[
        bool,
        typer.Option(
            "--use-mocker",
            help="Deploy mocker workers (0.9: spec.useMocker; 1.5: spec.features.mocker.enabled).",
        ),
    ] = False,
    workers_image: Annotated[
        str | None,
        typer.Option("--workers-image", metavar="IMAGE", help="Image of the worker components."),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", metavar="NAMESPACE", help="metadata.namespace of the DGDR."),
    ] = None,
    file: ManifestFileOption = None,
    apply: Annotated[
        bool,
        typer.Option(
            "--apply", help="Create it in the cluster (server-side apply) instead of stdout."
        ),
    ] = False,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    dynamo_version: ReleaseOption = None,
) -> None:
    """Write a DGDR for a model, backend and SLA that the release's CRD accepts (stdout, -f FILE,
    or --apply): only the fields that release has, none at its default."""
    from dynamo_plan.deploy.create import build_dgdr, dump_dgdr

    client = None
    if apply:
        from dynamo_plan.adapters.kubernetes import KubeClient
        from dynamo_plan.deploy.dgdr_cluster import release_for

        client = KubeClient(kubeconfig, context).connect()
        dynamo_version = release_for(dynamo_version, client)
    doc = build_dgdr(
        name=name,
        model=model,
        backend=backend,
        isl=isl,
        osl=osl,
        ttft_ms=ttft,
        itl_ms=itl,
        profiler_image=profiler_image,
        offline=offline,
        system=system,
        auto_apply=auto_apply,
        use_mocker=use_mocker,
        workers_image=workers_image,
        namespace=namespace,
        release=dynamo_version or NEWEST_RELEASE,
    )
    text = dump_dgdr(doc)
    if file is not None and not is_stdout(file):
        write_text_atomic(file, text)
        err_console.print(f"wrote {file}", highlight=False, markup=False)
    elif file is not None or not apply:
        sys.stdout.write(text)
    if client is not None:
        from dynamo_plan.profiler.workflow import apply_dgdr

        outcome = apply_dgdr(client, doc)
        err_console.print(
            f"{outcome.kind}/{outcome.name} in namespace {outcome.namespace} {outcome.action}",
            highlight=False,
            markup=False,
        )


@app.command("run")
def run(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="The DGDR YAML file (one document).")
    ],
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace", "-n", metavar="NAMESPACE", help="Namespace (default: the DGDR's)."
        ),
    ] = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", metavar="DIR", help="Keep the profile here (with --no-cluster: all outputs)."
        ),
    ] = None,
    no_cluster: Annotated[
        bool,
        typer.Option("--no-cluster", help="Touch no cluster: write ConfigMaps and DGD to --out."),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="S", help="Seconds to wait for the DGD to be Ready."),
    ] = 1800.0,
    poll: Annotated[
        float,
        typer.Option("--poll", metavar="S", help="Seconds between Ready checks while deploying."),
    ] = 2.0,
    dynamo_version: ReleaseOption = None,
    planner_image: PlannerImageOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Run the DGDR workflow here: validate, profile (offline), generate, apply when autoApply.

    Phases Pending → Profiling → Deploying → Ready | Failed go to the DGDR's status when its CRD
    is installed (one line each on stderr in any case); ConfigMaps dgdr-output-NAME and
    DGD-profile are always written. Online profiling (temporary DGDs and Jobs) shows
    its stages on stderr as ``profile --online --dgdr`` does.
    """
    from dynamo_plan.adapters.kubernetes import KubeClient
    from dynamo_plan.cli.progress_views import profiling_view
    from dynamo_plan.profiler.workflow import run_dgdr

    if no_cluster and out is None:
        raise UsageError("--no-cluster needs --out DIR")
    if timeout <= 0 or poll <= 0:
        raise UsageError("--timeout and --poll must be > 0 seconds")

    def on_phase(state: str, message: str) -> None:
        err_console.print(f"{state}: {message}", highlight=False, markup=False, soft_wrap=True)

    client = None if no_cluster else KubeClient(kubeconfig, context).connect()
    # --no-cluster: every output goes to --out, all or nothing (a directory it had to create is
    # removed on failure). With a cluster --out only keeps the profile, which is written whole.
    keep = output_dir(out) if no_cluster and out is not None else contextlib.nullcontext()
    with keep, profiling_view() as show:
        result = run_dgdr(
            file, client, namespace, out, on_phase, timeout_s=timeout, poll_s=poll,
            on_progress=show, release=dynamo_version, planner_image=planner_image,
        )  # fmt: skip
    for message in result.warnings:
        err_console.print(
            f"warning: {message}", style="yellow", highlight=False, markup=False, soft_wrap=True
        )
    data = result.as_dict()
    emit(data, output, table=lambda: Text(f"DGDR {result.namespace}/{result.name}: {result.state}"))


@app.command("status")
def status(
    name: Annotated[str, typer.Argument(metavar="NAME", help="metadata.name of the DGDR.")],
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace", "-n", metavar="NAMESPACE", help="Namespace (default: the context's)."
        ),
    ] = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show a DGDR's phase, conditions and generated DGD (from its status or dgdr-output-NAME)."""
    from dynamo_plan.adapters.kubernetes import KubeClient
    from dynamo_plan.profiler.workflow import dgdr_status

    data = dgdr_status(KubeClient(kubeconfig, context).connect(), name, namespace)

    def table() -> Group:
        lines = [Text(f"DGDR {data['namespace']}/{data['name']}: {data['state']}")]
        for c in data["conditions"]:
            lines.append(Text(f"  {c.get('type')}={c.get('status')} {c.get('message', '')}"))
        dgd = data["generatedDeployment"] or {}
        dgd_name = (dgd.get("metadata") or {}).get("name")
        lines.append(Text(f"  generated DGD: {dgd_name or '(none yet)'}"))
        return Group(*lines)

    emit(data, output, table=table)


class Target(StrEnum):
    """The apiVersion ``dgdr convert`` writes."""

    v1alpha1 = "v1alpha1"
    v1beta1 = "v1beta1"


@app.command("convert")
def convert(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="The DGDR YAML file (one document).")
    ],
    to: Annotated[
        Target,
        typer.Option("--to", metavar="VERSION", help="v1alpha1 or v1beta1.", case_sensitive=False),
    ],
    dynamo_version: Annotated[
        DynamoRelease | None,
        typer.Option(
            "--dynamo-version",
            metavar="VERSION",
            help="With --to v1alpha1: 0.9 (camelCase, useMocker; the default) or 0.6 (snake_case).",
        ),
    ] = None,
    output: Annotated[
        OutputFormat,
        typer.Option(
            "--output", "-o", metavar="FORMAT", help="yaml (the DGDR) or json (DGDR and notes)."
        ),
    ] = OutputFormat.yaml,
) -> None:
    """Print FILE in the other apiVersion's spelling; what cannot be carried over is named, one
    line each, on stderr (-o json: under "notCarried")."""
    import json

    from dynamo_plan.deploy.create import dump_dgdr, write_dgdr
    from dynamo_plan.deploy.dgdr_model import read_dgdr_file

    if to is Target.v1beta1:
        if dynamo_version not in (None, DynamoRelease.v1_5):
            raise UsageError("--to v1beta1 writes for Dynamo 1.5; drop --dynamo-version")
        release = DynamoRelease.v1_5
    else:
        if dynamo_version is DynamoRelease.v1_5:
            raise UsageError("--to v1alpha1 writes for Dynamo 0.9 or 0.6")
        release = dynamo_version or DynamoRelease.v0_9
    spec, _ = read_dgdr_file(file)
    doc, dropped = write_dgdr(spec, release)
    if output is OutputFormat.json:
        sys.stdout.write(json.dumps({"dgdr": doc, "notCarried": dropped}, indent=2) + "\n")
    elif output is OutputFormat.yaml:
        sys.stdout.write(dump_dgdr(doc))
        for note in dropped:
            err_console.print(
                f"not carried over: {note}", style="yellow", highlight=False, markup=False,
                soft_wrap=True,
            )  # fmt: skip
    else:
        raise UsageError("dgdr convert writes -o yaml or -o json")
