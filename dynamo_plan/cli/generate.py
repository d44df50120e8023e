"""``dynamo-plan generate-dgd``: a DynamoGraphDeployment manifest from a DGDR and a profile."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from dynamo_plan.cli.options import (
    DynamoVersionOption,
    ManifestFileOption,
    PlannerImageOption,
    ProfileDirOption,
)
from dynamo_plan.cli.output import OutputFormat, err_console, warn
from dynamo_plan.core.releases import NEWEST_RELEASE


def generate_dgd(
    dgdr: Annotated[
        Path, typer.Option("--dgdr", metavar="FILE", help="The DGDR YAML file (validated first).")
    ],
    profile: ProfileDirOption,
    file: ManifestFileOption = None,
    no_planner: Annotated[
        bool,
        typer.Option("--no-planner", help="Leave out the Planner, its ConfigMap and its RBAC."),
    ] = False,
    mocker: Annotated[
        bool,
        typer.Option(
            "--mocker", help="Use the mocker template (also when the DGDR asks for the mocker)."
        ),
    ] = False,
    dynamo_version: DynamoVersionOption = NEWEST_RELEASE,
    planner_image: PlannerImageOption = None,
    output: Annotated[
        OutputFormat,
        typer.Option(
            "--output",
            "-o",
            metavar="FORMAT",
            help="yaml (default; a multi-document manifest) or json (a list of the objects).",
        ),
    ] = OutputFormat.yaml,
) -> None:
    """Write the DGD manifest to stdout or -f FILE; a one-line summary on stderr.

    Output, in apply order: the Planner's ServiceAccount, Role and RoleBinding <dgd>-planner, the
    ConfigMap <dgd>-profile and the DynamoGraphDeployment in the apiVersion and shape of
    --dynamo-version, rendered from templates/<backend>/disagg-<api>-<release>.yaml.
    """
    # imported here: the render pulls in plan run's settings and the predictors (CLI start-up)
    import json

    from dynamo_plan.adapters.profile_files import load_profile
    from dynamo_plan.deploy.render import dump_manifest, load_dgdr, render
    from dynamo_plan.errors import UsageError
    from dynamo_plan.formats.files import is_stdout, write_text_atomic

    if output not in (OutputFormat.yaml, OutputFormat.json):
        raise UsageError(f"-o {output.value}: generate-dgd writes yaml or json")
    request = load_dgdr(dgdr)
    perf = load_profile(profile)
    out = render(
        request,
        perf,
        planner=not no_planner,
        mocker=mocker,
        dgdr_path=dgdr,
        profile_path=profile,
        release=dynamo_version,
        planner_image_flag=planner_image,
    )
    for message in out.warnings:
        warn(message)
    if output is OutputFormat.json:
        text = json.dumps(out.objects, indent=2) + "\n"
    else:
        text = dump_manifest(out.objects)
    if file is None or is_stdout(file):
        sys.stdout.write(text)
    else:
        write_text_atomic(file, text)
    where = "stdout" if file is None or is_stdout(file) else str(file)
    ns = f"{out.namespace}/" if out.namespace else ""
    roles = ", ".join(f"{r} {out.replicas[r]}×TP{out.tp[r]}" for r in ("prefill", "decode"))
    err_console.print(
        f"{len(out.objects)} object(s) to {where}: DynamoGraphDeployment {ns}{out.name} "
        f"(Dynamo {dynamo_version.value}) from {out.template} ({roles}; "
        f"planner {'on' if out.planner else 'off'})",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
