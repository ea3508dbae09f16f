"""Renderers: they only render what the library computed."""

from evalkit.report.github import render_annotations
from evalkit.report.junit import render_junit
from evalkit.report.markdown import render_markdown
from evalkit.report.terminal import render_comparison, render_run

__all__ = ["render_annotations", "render_comparison", "render_junit", "render_markdown", "render_run"]
