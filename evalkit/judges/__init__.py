"""LLM judges held to the standard of an instrument: pinned, calibrated against human labels, checked for drift.

``judges/<name>/judge.yaml`` (:func:`load_judge`) names a pinned model and a rubric; ``anchors.jsonl``
(:func:`load_anchors`) holds human-labelled outputs; :func:`calibrate` writes ``calibration.json`` with the
judge's agreement, noise floor and status; :func:`check` tells ``stable``, ``changed``, ``drifted`` or
``inconclusive``. :func:`open_judge` gives a :class:`Judge` whose ``verdict`` a scorer can await.
"""

from evalkit.judges.anchors import Anchor, AnchorSet, load_anchors
from evalkit.judges.calibrate import Calibration, calibrate, load_calibration
from evalkit.judges.drift import DriftCheck, check
from evalkit.judges.judge import Identity, Judge, JudgeItem, open_judge
from evalkit.judges.spec import JudgeSpec, VerdictForm, load_judge
from evalkit.judges.verdict import SampleVerdict, Verdict, parse_answer

__all__ = [
    "Anchor",
    "AnchorSet",
    "Calibration",
    "DriftCheck",
    "Identity",
    "Judge",
    "JudgeItem",
    "JudgeSpec",
    "SampleVerdict",
    "Verdict",
    "VerdictForm",
    "calibrate",
    "check",
    "load_anchors",
    "load_calibration",
    "load_judge",
    "open_judge",
    "parse_answer",
]
