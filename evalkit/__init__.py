"""evalkit: evaluation harness and CI regression gate for LLM features.

The public API; the ``evalkit`` command is a thin layer over these functions.
"""

from evalkit.ab import ABResult, run_ab
from evalkit.analysis.coverage import Coverage, CoverageConfig, coverage
from evalkit.analysis.drift import Drift, DriftConfig, drift
from evalkit.analysis.traffic import TrafficProfile, import_traffic, load_profile, save_profile
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
    StoreError,
    TemplateError,
    TrafficError,
)
from evalkit.providers import register_provider
from evalkit.providers.base import Attempt, CallRecord, Completion, Provider, ProviderSpec, Request
from evalkit.report.html import render_html
from evalkit.results import CaseResult, Run, load_run, merge_runs
from evalkit.runner import RunOptions, resume_run, run_suite
from evalkit.scorers import Score, ScoreContext, register
from evalkit.store import Store, open_store
from evalkit.suite import Case, Check, Suite, Target, load_suite
from evalkit.targets import register_target

__all__ = [
    "ABResult",
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
    "Coverage",
    "CoverageConfig",
    "Drift",
    "DriftConfig",
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
    "Store",
    "StoreError",
    "Suite",
    "Target",
    "TemplateError",
    "ToolCall",
    "ToolEvent",
    "TrafficError",
    "TrafficProfile",
    "Trajectory",
    "compare",
    "coverage",
    "drift",
    "import_traffic",
    "load_baseline",
    "load_profile",
    "load_run",
    "load_suite",
    "merge_runs",
    "open_store",
    "register",
    "register_provider",
    "register_target",
    "render_html",
    "resume_run",
    "run_ab",
    "run_suite",
    "save_baseline",
    "save_profile",
]
