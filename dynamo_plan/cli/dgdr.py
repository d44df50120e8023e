"""``dynamo-plan dgdr``: validate DynamoGraphDeploymentRequest files and create new ones."""

from __future__ import annotations

import contextlib
import sys
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
    TtftOption,
)
from dynamo_plan.cli.output import OutputFormat, OutputOption, emit, err_console
from dynamo_plan.errors import InputError, UsageError
from dynamo_plan.formats.files import is_stdout, output_dir, write_text_atomic

if TYPE_CHECKING:  # the validator (jsonschema) is imported when a command runs
    from dynamo_plan.deploy.dgdr import FileReport, Finding

app = typer.Typer(
    help="DynamoGraphDeploymentRequests (nvidia.com/v1alpha1): validate files, create new ones.",
    no_args_is_help=True,
)


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
    """Check DGDR files against the shipped schema: field path, line and a fix for each problem.

    Unknown keys are warnings (with the nearest known name); exit 1 when any file is invalid.
    """
    from dynamo_plan.deploy.dgdr import validate_file

    reports = [validate_file(path) for path in files]
    emit([r.as_dict() for r in reports], output, table=lambda: _report_table(reports))
    invalid = sum(not r.valid for r in reports)
    if invalid:
        raise InputError(f"{invalid} of {len(reports)} file(s) invalid")


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", metavar="NAME", help="metadata.name of the DGDR.")],
    model: Annotated[
        str, typer.Option("--model", metavar="MODEL", help="Model id (Hugging Face).")
    ],
    backend: Annotated[str, BACKEND],
    isl: Annotated[int, ISL],
    osl: Annotated[int, OSL],
    ttft: TtftOption,
    itl: ItlOption,
    profiler_image: Annotated[
        str,
        typer.Option(
            "--profiler-image", metavar="IMAGE", help="Container image of the profiling job."
        ),
    ],
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
        bool, typer.Option("--use-mocker", help="Also deploy a mocker DGD (spec.deployMocker).")
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
) -> None:
    """Write a valid DGDR for a model, backend and SLA (stdout, or -f FILE, or --apply)."""
    from dynamo_plan.deploy.create import build_dgdr, dump_dgdr

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
    )
    text = dump_dgdr(doc)
    if file is not None and not is_stdout(file):
        write_text_atomic(file, text)
        err_console.print(f"wrote {file}", highlight=False, markup=False)
    elif file is not None or not apply:
        sys.stdout.write(text)
    if apply:
        from dynamo_plan.adapters.kubernetes import KubeClient
        from dynamo_plan.profiler.workflow import apply_dgdr

        outcome = apply_dgdr(KubeClient(kubeconfig, context), doc)
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
    output: OutputOption = OutputFormat.table,
) -> None:
    """Run the DGDR workflow here: validate, profile (offline), generate, apply when autoApply.

    Phases Pending → Profiling → Deploying → Ready | Failed go to the DGDR's status when its CRD
    is installed (one line each on stderr in any case); ConfigMaps dgdr-output-NAME and
    planner-profile-data are always written. Online profiling (temporary DGDs and Jobs) shows
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
            on_progress=show,
        )  # fmt: skip
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
