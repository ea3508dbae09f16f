"""evalkit: evaluation harness and CI regression gate for LLM features.

The public API; the ``evalkit`` command is a thin layer over these functions.
"""

from evalkit.conditions import Conditions
from evalkit.errors import (
    ConfigError,
    EvalkitError,
    ExitCode,
    PrerequisiteError,
    ProviderError,
    ResultsError,
    RunInterrupted,
    TemplateError,
)
from evalkit.providers.base import Attempt, CallRecord, Completion, Provider, Request
from evalkit.results import CaseResult, Run, load_run, merge_runs
from evalkit.runner import RunOptions, resume_run, run_suite
from evalkit.scorers import Score, register
from evalkit.suite import Case, Check, Suite, Target, load_suite

__all__ = [
    "Attempt",
    "CallRecord",
    "Case",
    "CaseResult",
    "Check",
    "Completion",
    "Conditions",
    "ConfigError",
    "EvalkitError",
    "ExitCode",
    "PrerequisiteError",
    "Provider",
    "ProviderError",
    "Request",
    "ResultsError",
    "Run",
    "RunInterrupted",
    "RunOptions",
    "Score",
    "Suite",
    "Target",
    "TemplateError",
    "load_run",
    "load_suite",
    "merge_runs",
    "register",
    "resume_run",
    "run_suite",
]
