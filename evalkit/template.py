"""Prompt templates: jinja2 in a limited sandbox, StrictUndefined, variable discovery with jinja2's own parser.

Prompts are data. A template renders in jinja2's :class:`~jinja2.sandbox.SandboxedEnvironment` (no access to
``__globals__``, ``__class__``, unsafe callables) under two limits: wall-clock time and output size. Every
for-loop iteration, call, attribute lookup, ``~`` concatenation, ``*``/``**``/``+`` and filter result is
checked against them, so ``range(10**9)``, nested loops, exponential macros or string doubling stop with a
:class:`~evalkit.errors.TemplateError` instead of hanging or exhausting memory.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from evalkit.errors import TemplateError

__all__ = ["RenderLimits", "Template", "parse_template", "render_limited", "sandbox"]


@dataclass(frozen=True)
class RenderLimits:
    """How long one render may run and how much it may produce."""

    seconds: float = 2.0
    """Wall-clock time for one render."""
    output_chars: int = 1_000_000
    """Characters of output, and of any string or list built on the way."""


DEFAULT_LIMITS = RenderLimits()


class LimitExceeded(Exception):
    """A render went past its time or size limit (raised inside jinja2, reported as a TemplateError)."""


class _Budget:
    """The limits of the render in progress (one per render; renders do not nest)."""

    __slots__ = ("deadline", "limits")

    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise LimitExceeded(f"render took longer than {self.limits.seconds:g} s")

    def size(self, value: Any) -> Any:
        if isinstance(value, str | bytes | list | tuple | dict) and len(value) > self.limits.output_chars:
            raise LimitExceeded(f"a value of {len(value):,} items or characters exceeds the limit of "
                                f"{self.limits.output_chars:,}")
        return value

    def widths(self, pattern: Any) -> None:
        """A format string's widths and precisions ('%999999999d', '{:>999999999}') are sizes too."""
        if isinstance(pattern, str):
            for digits in _NUMBER.findall(pattern):
                if len(digits) > 12 or int(digits) > self.limits.output_chars:
                    raise LimitExceeded(f"a format width of {digits} exceeds the size limit of "
                                        f"{self.limits.output_chars:,}")

    def amplification(self, function: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        """Bounds what a padding or repeating callable would allocate before it runs (its result is too late)."""
        name = getattr(function, "__name__", "").removeprefix("do_")
        factor = _AMPLIFIERS.get(name)
        if factor is None:
            return
        bound = getattr(function, "__self__", None) or getattr(getattr(function, "__wrapped__", None), "__self__", None)
        subject = next((a for a in (bound, *args) if isinstance(a, str)), "")
        if name in ("format", "format_map"):
            self.widths(subject)
            return
        for value in (*args, *kwargs.values()):
            if isinstance(value, int) and not isinstance(value, bool):
                per = subject.count(factor) + 1 if isinstance(factor, str) else factor
                if value * per > self.limits.output_chars:
                    raise LimitExceeded(f"{name}({value:,}) would produce more than {self.limits.output_chars:,} "
                                        "characters")


# Callables whose integer argument sets the size of what they build: a width (1), a width per line or per tab
# (the separator counted in the subject), or paragraphs of about a thousand characters.
_AMPLIFIERS: dict[str, int | str] = {"center": 1, "ljust": 1, "rjust": 1, "zfill": 1, "batch": 1, "indent": "\n",
                                     "expandtabs": "\t", "lipsum": 1000, "generate_lorem_ipsum": 1000,
                                     "format": 0, "format_map": 0}
_NUMBER = re.compile(r"\d+")


@functools.cache
def sandbox() -> Any:
    """The shared limited sandbox: StrictUndefined, no autoescape, trailing newline kept."""
    import jinja2
    from jinja2 import nodes
    from jinja2.sandbox import SandboxedEnvironment

    class LimitedSandbox(SandboxedEnvironment):
        # Intercepted so that constant folding cannot evaluate 10**10**10 at compile time, and so that the
        # operands can be bounded before Python allocates the result.
        intercepted_binops = frozenset({"*", "**", "+", "%"})

        def __init__(self) -> None:
            # Prompts are text, not HTML; keep_trailing_newline keeps the hash equal to what the model sees.
            super().__init__(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
            self.local = threading.local()
            self.filters = {name: self._bounded(f) for name, f in self.filters.items()}
            self.globals = {name: self._bounded(f) if callable(f) else f for name, f in self.globals.items()}

        @property
        def budget(self) -> _Budget | None:
            return getattr(self.local, "budget", None)

        @budget.setter
        def budget(self, value: _Budget | None) -> None:
            self.local.budget = value

        def _check(self) -> _Budget:
            budget = self.budget
            if budget is None:  # compiled code run outside render_limited: sizes are still bounded
                return _Budget(DEFAULT_LIMITS)
            budget.tick()
            return budget

        def _bounded(self, function: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(function)
            def bounded(*args: Any, **kwargs: Any) -> Any:
                budget = self._check()
                budget.amplification(function, args, kwargs)
                return budget.size(function(*args, **kwargs))

            return bounded

        def guard_iter(self, iterable: Iterable[Any]) -> Iterator[Any]:
            """Every for-loop iterates through this: each step checks the clock."""
            for item in iterable:
                self._check()
                yield item

        def guard_concat(self, *parts: Any) -> str:
            """``a ~ b``: the result is bounded before it is built."""
            budget = self._check()
            total = 0
            for part in parts:
                text = part if isinstance(part, str) else str(part)
                total += len(text)
                if total > budget.limits.output_chars:
                    raise LimitExceeded(f"a string of more than {budget.limits.output_chars:,} characters")
            return "".join(str(p) for p in parts)

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            budget = self._check()
            if operator == "**":
                if isinstance(left, int) and isinstance(right, int) and left.bit_length() * right > 100_000:
                    raise LimitExceeded(f"a power of {right:,} is too large")
            elif operator == "%":
                budget.widths(left)
            elif operator == "*":
                for number, other in ((left, right), (right, left)):
                    if isinstance(number, int) and isinstance(other, str | list | tuple):
                        budget.size(other)
                        if number * len(other) > budget.limits.output_chars:
                            raise LimitExceeded(f"a repetition of {number * len(other):,} items or characters")
            return budget.size(super().call_binop(context, operator, left, right))

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            budget = __self._check()
            budget.amplification(__obj, args, kwargs)
            return budget.size(super().call(__context, __obj, *args, **kwargs))

        def getattr(self, obj: Any, attribute: str) -> Any:
            self._check()
            return super().getattr(obj, attribute)

        def getitem(self, obj: Any, argument: Any) -> Any:
            self._check()
            return super().getitem(obj, argument)

        def _generate(self, source: Any, name: str | None, filename: str | None, defer_init: bool = False) -> Any:
            # Route every for-loop and every `~` through the guards above. Only compiled code is rewritten:
            # parse() (variable discovery, the linter) sees the template as written.
            for loop in source.find_all(nodes.For):
                loop.iter = nodes.Call(nodes.EnvironmentAttribute("guard_iter"), [loop.iter], [], None, None,
                                       lineno=loop.lineno)
            for concat in list(source.find_all(nodes.Concat)):
                call = nodes.Call(nodes.EnvironmentAttribute("guard_concat"), list(concat.nodes), [], None, None,
                                  lineno=concat.lineno)
                concat.nodes = [call]
            return super()._generate(source, name, filename, defer_init)

    return LimitedSandbox()


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> Any:
    return sandbox().from_string(source)


def render_limited(source: str, values: Mapping[str, Any], limits: RenderLimits = DEFAULT_LIMITS,
                   environment: Any = None) -> str:
    """Renders in the limited sandbox (or an overlay of it with a loader, for includes); jinja2's errors pass
    through, a limit raises :class:`LimitExceeded`."""

    if environment is None:
        environment = sandbox()
        template = _compiled(source)
    else:
        template = environment.from_string(source)
    environment.budget = budget = _Budget(limits)
    try:
        out: list[str] = []
        size = 0
        for chunk in template.generate(**values):
            size += len(chunk)
            if size > limits.output_chars:
                raise LimitExceeded(f"output is longer than {limits.output_chars:,} characters")
            budget.tick()
            out.append(chunk)
        return "".join(out)
    except RecursionError:
        raise LimitExceeded("recursion too deep") from None
    except OverflowError as exc:  # the sandbox's range() above MAX_RANGE, or an integer too large for a float
        raise LimitExceeded(str(exc)) from None
    except MemoryError:
        raise LimitExceeded("out of memory") from None
    finally:
        environment.budget = None


@dataclass(frozen=True)
class Template:
    """One prompt template: its source text, where it came from, and the variables it reads."""

    source: str
    """The template text."""
    origin: str
    """A file path (as the user wrote it) or ``<suite>:target.user`` for inline text."""
    variables: frozenset[str]
    """Undeclared variables the template reads (found by jinja2's parser)."""

    @property
    def sha256(self) -> str:
        """Hash of the template source."""
        return hashlib.sha256(self.source.encode()).hexdigest()

    def render(self, values: Mapping[str, Any], *, context: str, limits: RenderLimits = DEFAULT_LIMITS) -> str:
        """Renders with StrictUndefined in the limited sandbox; a missing variable raises :class:`TemplateError`."""
        import jinja2
        from jinja2.exceptions import SecurityError

        missing = sorted(self.variables - set(values))
        if missing:
            raise TemplateError(
                f"{context}: template variable {missing[0]!r} used in {self.origin} is not supplied "
                f"(expected it in the case's vars or defaults.vars, got: {', '.join(sorted(values)) or 'none'})"
            )
        try:
            return render_limited(self.source, values, limits)
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"{context}: {self.origin}: {exc.message}") from None
        except SecurityError as exc:
            raise TemplateError(f"{context}: {self.origin}: template refused by the sandbox: {exc}") from None
        except LimitExceeded as exc:
            raise TemplateError(f"{context}: {self.origin}: template stopped: {exc}") from None
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{context}: {self.origin}: template failed to render: {exc}") from None


def parse_template(source: str, origin: str) -> Template:
    """Parses a template; a syntax error raises :class:`TemplateError` with the line."""
    import jinja2
    from jinja2 import meta

    try:
        ast = sandbox().parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{origin}:{exc.lineno}: template syntax error: {exc.message}") from None
    return Template(source=source, origin=origin, variables=frozenset(meta.find_undeclared_variables(ast)))
