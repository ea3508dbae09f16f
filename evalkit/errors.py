"""The exception tree and the exit codes of the ``evalkit`` command.

::

    EvalkitError                 a user-facing error: the CLI prints it as one line, no traceback
    ├── ConfigError              a suite, cases file, template or option is wrong
    │   └── TemplateError        a template does not parse or a variable is missing
    ├── PrerequisiteError        an optional extra, a model file or an API key is missing
    ├── ProviderError            a provider could not be started or reached at all
    ├── ServiceError             a service, MCP server or state store of a live-tools suite could not be set up
    ├── ResultsError             a run directory or results file is missing, foreign or corrupt
    ├── BaselineError            a baseline file is missing, foreign or corrupt, or a run cannot be one
    ├── TrafficError             a traffic log or profile is missing, unreadable, foreign or holds no requests
    ├── PublishError             GitHub refused or could not be reached when posting a report
    ├── JudgeError               a judge has no usable calibration record, or cannot be calibrated as asked
    ├── StoreError               the history store is corrupt, foreign, newer than evalkit, or unreachable
    └── RunInterrupted           Ctrl-C: what finished is saved, and the message says how to resume

Anything else that escapes is a bug in evalkit and keeps its traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit status of the ``evalkit`` command; a CI gate *is* its exit status."""

    OK = 0
    REGRESSION = 1
    USAGE_ERROR = 2
    INCONCLUSIVE = 3
    LINT_FAILED = 4
    RUN_FAILED = 5
    JUDGE_CHANGED = 6
    """``evalkit judge check``: the judge's identity differs from its calibration (model, fingerprint, endpoint …)."""
    JUDGE_DRIFTED = 7
    """``evalkit judge check``: verdicts on the anchors moved beyond the calibration's noise floor."""
    JUDGE_INCONCLUSIVE = 8
    """``evalkit judge check``: too little was scored to tell (or the instrument failed)."""
    COVERAGE_FAILED = 9
    """Traffic coverage found a blocking gap, or ``coverage drift --check`` found router drift."""
    INTERNAL_ERROR = 70
    INTERRUPTED = 130
    TERMINATED = 143


class EvalkitError(Exception):
    """Base of every error evalkit reports to a user as one line."""

    exit_code: ExitCode = ExitCode.USAGE_ERROR


class ConfigError(EvalkitError):
    """A suite, cases file, template or option is invalid.

    The message names the file (and line where known), the field path, what was expected and what was got.
    """


class TemplateError(ConfigError):
    """A prompt template does not parse, or a case does not supply one of its variables."""


class PrerequisiteError(EvalkitError):
    """Something the user must install or configure is missing (an extra, a model file, an API key)."""


class ProviderError(EvalkitError):
    """A provider could not be started or reached at all (per-call errors are data, not exceptions)."""

    exit_code = ExitCode.RUN_FAILED


class ServiceError(EvalkitError):
    """A service, MCP server or state store of a live-tools suite could not be started or set up.

    The message names the suite field, what was expected and what happened (with the process's stderr tail).
    """

    exit_code = ExitCode.RUN_FAILED


class ResultsError(EvalkitError):
    """A run directory or results file is missing, of an unknown format version, or corrupt."""


class BaselineError(EvalkitError):
    """A baseline file is missing, of an unknown format version or corrupt, or a run cannot become one."""


class TrafficError(EvalkitError):
    """A traffic log cannot be read or yields no requests, or a traffic profile is missing, foreign or empty."""


class PublishError(EvalkitError):
    """Posting a report (a PR comment) failed; the report itself was already written."""

    exit_code = ExitCode.RUN_FAILED


class JudgeError(EvalkitError):
    """A judge has no calibration record, a foreign or corrupt one, or cannot be calibrated as asked."""


class StoreError(EvalkitError):
    """The history store cannot be opened, read or written: corrupt, foreign, written by a newer evalkit,
    or unreachable. A run's directory is never affected: the journal is the source of truth."""


class RunInterrupted(EvalkitError):
    """The user interrupted a run; every finished result is already in its journal."""

    exit_code = ExitCode.INTERRUPTED


def install_hint(extra: str, what: str) -> str:
    """The one-line hint shown when an optional extra is not installed."""
    return f"{what} is not installed; install it with: pip install 'evalkit[{extra}]'"
