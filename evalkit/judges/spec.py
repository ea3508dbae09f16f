"""Judge specs: ``judges/<name>/judge.yaml`` → a validated, frozen :class:`JudgeSpec`.

A judge is pinned (a floating alias is an error unless ``allow_floating`` gives a reason), asks for its
verdict through structured output with ``reasoning`` before ``verdict``, and knows the thresholds its
calibration is held to.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit import schema
from evalkit.errors import ConfigError
from evalkit.providers.base import ProviderSpec
from evalkit.template import Template, parse_template

Label = str | int
"""A verdict or human label: ``pass``/``fail``, ``a``/``b``/``tie``, or an integer of an ordinal scale."""

JUDGE_FILE = "judge.yaml"
ANCHORS_FILE = "anchors.jsonl"
CALIBRATION_FILE = "calibration.json"
DEFAULT_PARAMS: Mapping[str, Any] = {"temperature": 0, "seed": 0}
"""What a judge's ``params`` start from; the spec's own params override them key by key."""
RESERVED_VARIABLES = frozenset({"output", "output_a", "output_b", "reference", "labels", "vars"})
"""Names the rubric sees besides the case vars (they win over a case var of the same name)."""


@dataclass(frozen=True)
class VerdictForm:
    """What a judge answers: binary pass/fail, a point on an ordinal scale, or which of two outputs is better."""

    kind: str
    """``binary``, ``ordinal`` or ``pairwise``."""
    labels: tuple[Label, ...]
    """Every label in order: ``(fail, pass)``, ``(min … max)`` or ``(a, tie, b)``."""
    pass_at: int | None = None
    """Ordinal only: labels at or above this count as a pass (for TPR/TNR and suite pass rates)."""

    @property
    def ordinal(self) -> bool:
        return self.kind == "ordinal"

    @property
    def pairwise(self) -> bool:
        return self.kind == "pairwise"

    def code(self, label: Label) -> int:
        """The label's position in :attr:`labels` (what the statistics work on)."""
        return self.labels.index(label)

    def positive(self, label: Label) -> bool:
        """Whether a label counts as a pass (pairwise: whether it prefers output a)."""
        if self.kind == "binary":
            return label == "pass"
        if self.kind == "pairwise":
            return label == "a"
        assert self.pass_at is not None and isinstance(label, int)
        return label >= self.pass_at

    def normalise(self, value: Any) -> Label | None:
        """A label as written in JSON (``"Pass"``, ``4``, ``"4"``, ``4.0``) → the canonical label, or None."""
        if self.ordinal:
            if isinstance(value, bool):
                return None
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
                value = int(value.strip())
            return value if isinstance(value, int) and value in self.labels else None
        if isinstance(value, str) and value.strip().lower() in self.labels:
            return value.strip().lower()
        return None

    def describe(self) -> str:
        """``pass, fail`` or ``1–5``, for messages."""
        if self.ordinal:
            return f"an integer {self.labels[0]}–{self.labels[-1]}"
        return ", ".join(repr(label) for label in self.labels)

    def response_schema(self, reasoning_max_chars: int) -> dict[str, Any]:
        """The JSON Schema of an answer: ``reasoning`` first (the model thinks before it decides), then ``verdict``."""
        verdict: dict[str, Any] = ({"type": "integer", "enum": list(self.labels)} if self.ordinal
                                   else {"type": "string", "enum": list(self.labels)})
        return {"type": "object", "additionalProperties": False, "required": ["reasoning", "verdict"],
                "properties": {"reasoning": {"type": "string", "maxLength": reasoning_max_chars},
                               "verdict": verdict}}


@dataclass(frozen=True)
class Thresholds:
    """What an ``eligible`` calibration needs (the issue's defaults; configurable per judge)."""

    kappa_lower: float = 0.60
    """Lower confidence bound of Cohen's kappa (binary, pairwise) or quadratic-weighted kappa (ordinal)."""
    tpr_lower: float = 0.80
    """Wilson lower bound of the true-positive rate (pairwise: recall of 'a')."""
    tnr_lower: float = 0.80
    """Wilson lower bound of the true-negative rate (pairwise: recall of 'b')."""
    flip_rate_max: float = 0.10
    """Test-retest flip rate (the noise floor) allowed."""
    unscored_max: float = 0.02
    """Share of verdicts that could not be parsed; above it the instrument failed."""


@dataclass(frozen=True)
class CalibrationSettings:
    passes: int = 2
    """Times every anchor is judged (≥ 2: the test-retest flip rate needs two)."""
    level: float = 0.95
    bootstrap: int = 2000
    seed: int = 0
    """Seeds the bootstrap resamples (the judge's own sampling seed is in ``params``)."""
    thresholds: Thresholds = Thresholds()


@dataclass(frozen=True)
class Probes:
    """Bias probes run during calibration, each measured against a placebo repeat."""

    padding: str | None = None
    """Length padding: this content-free text is appended to the output under test."""
    position: bool = False
    """Pairwise only: report how verdicts follow position rather than content (both orders are always judged)."""


DEFAULT_FILLER = ("Thank you for reaching out to us today. We appreciate your patience and we value you as a "
                  "customer.")


@dataclass(frozen=True)
class JudgeSpec:
    """A validated judge."""

    name: str
    path: str
    """The judge.yaml as displayed in messages."""
    folder: Path
    provider: ProviderSpec
    model: str
    """The model requested (the local provider's default filled in)."""
    rubric: Template
    verdict: VerdictForm
    system: Template | None = None
    allow_floating: str | None = None
    reasoning_max_chars: int = 200
    samples: int = 1
    aggregate: str = "majority"
    anchors: Path = Path(ANCHORS_FILE)
    concurrency: int = 2
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    cost_per_mtok: tuple[float, float] | None = None
    """(input, output) price per million tokens, when known."""
    calibration: CalibrationSettings = CalibrationSettings()
    drift_alpha: float = 0.05
    probes: Probes = Probes()
    description: str = ""
    raw_params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """The params as the spec wrote them (before the defaults), for messages."""

    @property
    def params(self) -> Mapping[str, Any]:
        return self.provider.params

    @property
    def calibration_path(self) -> Path:
        return self.folder / CALIBRATION_FILE

    @property
    def response_format(self) -> dict[str, Any]:
        """The structured-output request (``Request.response_format``)."""
        return {"name": "verdict", "schema": self.verdict.response_schema(self.reasoning_max_chars)}

    @property
    def prompt_sha256(self) -> str:
        """Hash of everything the judge is shown besides the item: system, rubric, answer schema."""
        payload = json.dumps({"system": self.system.source if self.system else None, "rubric": self.rubric.source,
                              "format": self.response_format}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()

    @property
    def params_sha256(self) -> str:
        """Hash of how the judge samples: params, samples per item and their aggregation."""
        payload = json.dumps({"params": dict(self.params), "samples": self.samples, "aggregate": self.aggregate},
                             sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()


def _verdict_form(raw: Mapping[str, Any], at: str) -> VerdictForm:
    kind = raw["type"]
    if kind == "binary":
        extra = sorted(set(raw) & {"min", "max", "pass_at"})
        if extra:
            raise ConfigError(f"{at}: verdict.{extra[0]}: expected no {extra[0]} for a binary verdict, got "
                              f"{schema.describe(raw[extra[0]])}")
        return VerdictForm("binary", ("fail", "pass"))
    if kind == "pairwise":
        return VerdictForm("pairwise", ("a", "tie", "b"))
    low, high = raw.get("min"), raw.get("max")
    if low is None or high is None:
        missing = "min" if low is None else "max"
        raise ConfigError(f"{at}: verdict.{missing}: expected an integer for an ordinal scale, got none")
    if not high - low >= 1 or high - low > 20:
        raise ConfigError(f"{at}: verdict.max: expected a scale of 2 to 21 points above min {low}, got max {high}")
    pass_at = raw.get("pass_at", low + (high - low) // 2 + 1)
    if not low < pass_at <= high:
        raise ConfigError(f"{at}: verdict.pass_at: expected an integer in {low + 1}–{high}, got {pass_at}")
    return VerdictForm("ordinal", tuple(range(low, high + 1)), pass_at)


def floating_problem(model: str, allow_floating: str | None, today: dt.date | None = None) -> str | None:
    """Why a judge model id cannot be used as written, or None (pinned, or floating with a reason)."""
    from evalkit.lint.models import describe, load_catalog

    catalog = load_catalog()
    found = describe(catalog, model, today or dt.date.today())
    if found is None:
        return None
    severity, message = found
    if model in catalog.status:
        return message if severity == "error" else None  # a deprecated snapshot is still pinned
    if allow_floating:
        return None
    return (f"expected a pinned model snapshot, got the floating alias {model!r} (it moves to new snapshots "
            "without notice, so verdicts change currency); pin a dated snapshot or set allow_floating: \"<reason>\"")


def judge_path(name: str, judges_dir: str | os.PathLike[str] = "judges") -> Path:
    """``judges/<name>/judge.yaml``, or the path itself when ``name`` is a .yaml file or a folder."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml"):
        return candidate
    if candidate.is_dir() and (candidate / JUDGE_FILE).is_file():
        return candidate / JUDGE_FILE
    return Path(judges_dir) / name / JUDGE_FILE


def load_judge(name: str, judges_dir: str | os.PathLike[str] = "judges") -> JudgeSpec:
    """Loads and validates a judge; every problem raises :class:`ConfigError` with file, line and field."""
    from evalkit.suite import display_path

    path = judge_path(name, judges_dir)
    display = display_path(path)
    if not path.is_file():
        parent = path.parent.parent
        names = sorted(p.parent.name for p in parent.glob(f"*/{JUDGE_FILE}")) if parent.is_dir() else []
        raise ConfigError(f"{display}: file not found (expected a judge named {name!r}; judges in "
                          f"{display_path(parent)}/: {', '.join(names) or 'none'})")
    raw, locate = schema.load_yaml(path, display)
    if not isinstance(raw, dict):
        raise ConfigError(f"{display}: (top level): expected a mapping with provider, rubric and verdict, "
                          f"got {schema.describe(raw)}")
    schema.validate(raw, "judge", display, locate)

    def at(*field_path: str | int) -> str:
        return schema.where(display, locate(field_path))

    folder = path.parent
    judge_name = raw.get("name", folder.name)
    if judge_name != folder.name:
        raise ConfigError(f"{at('name')}: name: expected the folder's name {folder.name!r}, got {judge_name!r}")
    provider = raw["provider"]
    model = raw.get("model")
    if model is None:
        if provider != "local":
            raise ConfigError(f"{at('provider')}: model: expected a pinned model id for provider {provider}, got none")
        from evalkit.providers.local import MODEL_NAME

        model = MODEL_NAME
    problem = floating_problem(model, raw.get("allow_floating"))
    if problem:
        raise ConfigError(f"{at('model')}: model: {problem}")
    params = {**DEFAULT_PARAMS, **raw.get("params", {})}
    if "seed" in params and not isinstance(params["seed"], int):
        raise ConfigError(f"{at('params', 'seed')}: params.seed: expected an integer, got "
                          f"{schema.describe(params['seed'])}")
    verdict = _verdict_form(raw["verdict"], at("verdict"))
    aggregate = raw.get("aggregate", "majority")
    if aggregate == "mean" and not verdict.ordinal:
        raise ConfigError(f"{at('aggregate')}: aggregate: expected 'majority' for a {verdict.kind} verdict "
                          "('mean' needs an ordinal scale), got 'mean'")
    rubric = _template(raw["rubric"], folder, "rubric", at("rubric"), display)
    system = _template(raw["system"], folder, "system", at("system"), display) if "system" in raw else None
    shown = {"output_a", "output_b"} if verdict.pairwise else {"output"}
    used = rubric.variables | (system.variables if system else frozenset())
    if not shown <= used:
        missing = sorted(shown - used)[0]
        raise ConfigError(f"{at('rubric')}: rubric: expected the rubric to show {{{{ {missing} }}}} (the output "
                          f"under test), got a template that never uses it ({rubric.origin})")
    calibration = raw.get("calibration", {})
    probes = raw.get("probes", {})
    padding = probes.get("length_padding", False)
    filler = None
    if padding:
        options = padding if isinstance(padding, dict) else {}
        filler = " ".join([options.get("filler", DEFAULT_FILLER)] * int(options.get("repeat", 1)))
    if probes.get("position") and not verdict.pairwise:
        raise ConfigError(f"{at('probes', 'position')}: probes.position: expected a pairwise verdict (the "
                          f"position probe swaps two outputs), got a {verdict.kind} verdict")
    if filler and verdict.pairwise:
        raise ConfigError(f"{at('probes', 'length_padding')}: probes.length_padding: expected a binary or "
                          "ordinal verdict, got a pairwise verdict")
    rate = raw.get("rate_limit", {})
    cost = raw.get("cost")
    return JudgeSpec(
        name=judge_name, path=display, folder=folder,
        provider=ProviderSpec(provider=provider, model=model, base_url=raw.get("base_url"),
                              api_key_env=raw.get("api_key_env"), params=params,
                              timeout=float(raw.get("timeout", 60.0)), max_attempts=int(raw.get("max_attempts", 3))),
        model=model, rubric=rubric, verdict=verdict, system=system, allow_floating=raw.get("allow_floating"),
        reasoning_max_chars=int(raw.get("reasoning_max_chars", 200)), samples=int(raw.get("samples", 1)),
        aggregate=aggregate, anchors=folder / raw.get("anchors", ANCHORS_FILE),
        concurrency=int(raw.get("concurrency", 2)),
        requests_per_minute=rate.get("requests_per_minute"), tokens_per_minute=rate.get("tokens_per_minute"),
        cost_per_mtok=(float(cost["input_per_mtok"]), float(cost["output_per_mtok"])) if cost else None,
        calibration=CalibrationSettings(
            passes=int(calibration.get("passes", 2)), level=float(calibration.get("level", 0.95)),
            bootstrap=int(calibration.get("bootstrap", 2000)), seed=int(calibration.get("seed", 0)),
            thresholds=Thresholds(**calibration.get("thresholds", {})),
        ),
        drift_alpha=float(raw.get("drift", {}).get("alpha", 0.05)),
        probes=Probes(padding=filler, position=bool(probes.get("position", False))),
        description=raw.get("description", ""), raw_params=dict(raw.get("params", {})),
    )


def _template(spec: Any, folder: Path, field_name: str, at: str, display: str) -> Template:
    from evalkit.suite import display_path

    if isinstance(spec, str):
        return parse_template(spec, f"{display}:{field_name}")
    file = folder / spec["file"]
    shown = display_path(file)
    try:
        text = file.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{at}: {field_name}.file: expected an existing file, got {shown!r}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{at}: {field_name}.file: expected UTF-8 text in {shown!r}, got binary data") from None
    except OSError as exc:
        raise ConfigError(f"{at}: {field_name}.file: cannot read {shown!r} ({exc.strerror})") from None
    return parse_template(text, shown)
