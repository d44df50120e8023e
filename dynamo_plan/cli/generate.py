"""``dynamo-plan generate-dgd``: a DynamoGraphDeployment manifest from a DGDR and a profile."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from dynamo_plan.cli.options import ManifestFileOption, ProfileDirOption
from dynamo_plan.cli.output import err_console, warn


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
        typer.Option("--mocker", help="Use the mocker template (also when spec.deployMocker)."),
    ] = False,
) -> None:
    """Write the DGD manifest (multi-document YAML) to stdout or -f FILE; summary on stderr.

    Output: the Planner's ServiceAccount, Role and RoleBinding, the ConfigMap planner-profile-data
    and the DynamoGraphDeployment, rendered from templates/<backend>/disagg.yaml.
    """
    # imported here: the render pulls in plan run's settings and the predictors (CLI start-up)
    from dynamo_plan.adapters.profile_files import load_profile
    from dynamo_plan.deploy.render import dump_manifest, load_dgdr, render
    from dynamo_plan.formats.files import is_stdout, write_text_atomic

    request = load_dgdr(dgdr)
    perf = load_profile(profile)
    out = render(
        request,
        perf,
        planner=not no_planner,
        mocker=mocker,
        dgdr_path=dgdr,
        profile_path=profile,
    )
    for message in out.warnings:
        warn(message)
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
        f"from {out.template} ({roles}; planner {'on' if out.planner else 'off'})",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
