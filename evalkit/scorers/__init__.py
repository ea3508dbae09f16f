"""Scorers: the registry (one contract for every scorer) and the built-in checks.

See :mod:`evalkit.scorers.registry` for the contract; :mod:`evalkit.scorers.checks` registers the
built-ins (``equals``, ``contains``, ``regex``, ``json-schema`` …) with the same :func:`register` a plugin
uses.
"""

from evalkit.core.score import Score, ScoreContext
from evalkit.scorers import checks as _checks  # noqa: F401 -- importing it registers the built-in checks
from evalkit.scorers import claims as _claims  # noqa: F401 -- live-tools checks (agent suites)
from evalkit.scorers import judge as _judge  # noqa: F401 -- LLM judges (evalkit.judges.pool)
from evalkit.scorers import state as _state  # noqa: F401
from evalkit.scorers import trajectory as _trajectory  # noqa: F401
from evalkit.scorers.checks import parse_json_path
from evalkit.scorers.registry import REGISTRY, Scorer, check_problem, lookup, register, run_check, score

__all__ = ["REGISTRY", "Score", "ScoreContext", "Scorer", "check_problem", "lookup", "parse_json_path",
           "register", "run_check", "score"]
