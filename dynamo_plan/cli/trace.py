"""Placeholder replaced by the trace command group."""

import typer

app = typer.Typer(help="trace")
