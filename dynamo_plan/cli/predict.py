"""Placeholder replaced by the predict command group."""

import typer

app = typer.Typer(help="predict")
