"""The ``dynamo-plan`` command: the root Typer app, error handling and exit codes."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from dynamo_plan import __version__
from dynamo_plan.cli.output import err_console
from dynamo_plan.errors import DynamoPlanError

EXIT_CODES_HELP = (
    "Exit codes: 0 ok · 1 invalid input · 2 usage error · "
    "3 an outside service failed (cluster, Prometheus, etcd) · 4 the SLA cannot be met."
)


class _ErrorHandlingGroup(TyperGroup):
    """Turns every DynamoPlanError (raised by any subcommand) into one red line and its exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except DynamoPlanError as e:
            err_console.print(
                f"[red]error:[/] {escape(str(e))}", soft_wrap=True, markup=True, emoji=False
            )
            raise typer.Exit(e.exit_code) from e
        except OSError as e:  # a file the user named cannot be read or written: bad input
            where = f": {e.filename}" if e.filename else ""
            err_console.print(
                f"[red]error:[/] {escape(e.strerror or str(e))}{escape(where)}",
                soft_wrap=True,
                emoji=False,
            )
            raise typer.Exit(1) from e
        except KeyboardInterrupt:
            err_console.print("[red]interrupted[/]")
            raise typer.Exit(130) from None


app = typer.Typer(
    name="dynamo-plan",
    cls=_ErrorHandlingGroup,
    help="Turn an LLM-serving SLA into a right-sized disaggregated deployment, and keep it "
    "right-sized.\n\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dynamo-plan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """dynamo-plan."""


# Command groups: each module owns one group (a Typer app) or one command.
from dynamo_plan.cli import apply as _apply  # noqa: E402
from dynamo_plan.cli import demo as _demo  # noqa: E402
from dynamo_plan.cli import dgdr as _dgdr  # noqa: E402
from dynamo_plan.cli import doctor as _doctor  # noqa: E402
from dynamo_plan.cli import estimate as _estimate  # noqa: E402
from dynamo_plan.cli import generate as _generate  # noqa: E402
from dynamo_plan.cli import load as _load  # noqa: E402
from dynamo_plan.cli import mocker as _mocker  # noqa: E402
from dynamo_plan.cli import plan as _plan  # noqa: E402
from dynamo_plan.cli import predict as _predict  # noqa: E402
from dynamo_plan.cli import profile as _profile  # noqa: E402
from dynamo_plan.cli import simulate as _simulate  # noqa: E402
from dynamo_plan.cli import trace as _trace  # noqa: E402
from dynamo_plan.cli import virtual as _virtual  # noqa: E402

app.add_typer(_predict.app, name="predict")
app.add_typer(_plan.app, name="plan")
app.add_typer(_trace.app, name="trace")
app.add_typer(_dgdr.app, name="dgdr")
app.add_typer(_mocker.app, name="mocker")
app.add_typer(_load.app, name="load")
app.add_typer(_virtual.app, name="virtual")
app.command(
    "profile", help="Size prefill/decode engines for an SLA and write a performance profile."
)(_profile.profile)
app.command(
    "estimate", help="Estimate prefill TTFT / decode ITL and tokens/s/GPU offline (no GPU)."
)(_estimate.estimate)
app.command(
    "simulate",
    help="Replay a trace through a simulated deployment scaled by a policy (or --compare all).",
)(_simulate.simulate)
app.command(
    "demo", help="Offline demo: estimate a profile, replay a bundled trace, compare policies."
)(_demo.demo)
app.command(
    "generate-dgd",
    help="Render a DynamoGraphDeployment (+ Planner, its RBAC and profile ConfigMap) from a DGDR.",
)(_generate.generate_dgd)

app.command(
    "apply", help="Server-side apply a manifest (field manager dynamo-plan); --wait for Ready."
)(_apply.apply)
app.command("delete", help="Delete every object of a manifest.")(_apply.delete)
app.command(
    "doctor",
    help="Check a cluster for Dynamo: CRDs, GPUs, pull secret, Prometheus, planner RBAC, stuck DGDRs.",
)(_doctor.doctor)


def main() -> None:
    """Console-script entry point (exits with the documented exit code)."""
    app(prog_name="dynamo-plan")
