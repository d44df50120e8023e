"""Typer command groups; the only package that imports typer and rich."""
