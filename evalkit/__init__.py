"""evalkit: evaluation harness and CI regression gate for LLM features.

The public API; the ``evalkit`` command is a thin layer over these functions.
"""

from evalkit.baseline import Baseline, Sample, load_baseline, save_baseline
from evalkit.compare import Comparison, GateConfig, Metric, compare
from evalkit.conditions import Conditions
from evalkit.core.trajectory import Fault, ToolCall, ToolEvent, Trajectory
from evalkit.errors import (
    BaselineError,
    ConfigError,
    EvalkitError,
    ExitCode,
    JudgeError,
    PrerequisiteError,
    ProviderError,
    PublishError,
    ResultsError,
    RunInterrupted,
    TemplateError,
)
from evalkit.providers import register_provider
from evalkit.providers.base import Attempt, CallRecord, Completion, Provider, ProviderSpec, Request
from evalkit.results import CaseResult, Run, load_run, merge_runs
from evalkit.runner import RunOptions, resume_run, run_suite
from evalkit.scorers import Score, ScoreContext, register
from evalkit.suite import Case, Check, Suite, Target, load_suite
from evalkit.targets import register_target

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
    "Fault",
    "GateConfig",
    "JudgeError",
    "Metric",
    "PrerequisiteError",
    "Provider",
    "ProviderError",
    "ProviderSpec",
    "PublishError",
    "Request",
    "ResultsError",
    "Run",
    "RunInterrupted",
    "RunOptions",
    "Sample",
    "Score",
    "ScoreContext",
    "Suite",
    "Target",
    "TemplateError",
    "ToolCall",
    "ToolEvent",
    "Trajectory",
    "compare",
    "load_baseline",
    "load_run",
    "load_suite",
    "merge_runs",
    "register",
    "register_provider",
    "register_target",
    "resume_run",
    "run_suite",
    "save_baseline",
]
