"""evalkit: evaluation harness and CI regression gate for LLM features.

The public API; the ``evalkit`` command is a thin layer over these functions.
"""

from evalkit.baseline import Baseline, Sample, load_baseline, save_baseline
from evalkit.compare import Comparison, GateConfig, Metric, compare
from evalkit.conditions import Conditions
from evalkit.errors import (
    BaselineError,
    ConfigError,
    EvalkitError,
    ExitCode,
    PrerequisiteError,
    ProviderError,
    PublishError,
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
    "Baseline",
    "BaselineError",
    "CallRecord",
    "Case",
    "CaseResult",
    "Check",
    "Comparison",
    "Completion",
    "Conditions",
    "ConfigError",
    "EvalkitError",
    "ExitCode",
    "GateConfig",
    "Metric",
    "PrerequisiteError",
    "Provider",
    "ProviderError",
    "PublishError",
    "Request",
    "ResultsError",
    "Run",
    "RunInterrupted",
    "RunOptions",
    "Sample",
    "Score",
    "Suite",
    "Target",
    "TemplateError",
    "compare",
    "load_baseline",
    "load_run",
    "load_suite",
    "merge_runs",
    "register",
    "resume_run",
    "run_suite",
    "save_baseline",
]
