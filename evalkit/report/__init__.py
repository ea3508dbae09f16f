"""Renderers: they only render what the library computed."""

from evalkit.report.terminal import render_run

__all__ = ["render_run"]
