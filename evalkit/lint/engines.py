"""Which template engine a file is written for, and an exact, fast jinja2 parse for the ones that are jinja2.

A file is checked as jinja2 when its suffix says so (``.j2``, ``.jinja``, ``.jinja2``, ``.prompty`` without
another ``template:``), when ``lint.templates`` says so, when a suite renders it, or when its tags are
jinja2's (``{% if %}``, ``{{ x | filter }}``) and no other engine's. Go templates (``{{ .Field }}``,
``{{- range }}``), Semantic Kernel (``{{$var}}``), Handlebars (``{{#each}}``, ``{{role "system"}}``),
mustache (``{{#section}}``, ``{{^x}}``), Liquid/Django tags and ``{{`` that only appear in code fences or
inline code are recognised and not checked as jinja2: the report names the engine in a note.

:func:`parse` gives the verdict, the line and the message of ``jinja2.Environment().parse`` exactly; it is
faster because the text between tags, which cannot change a parse, is reduced to its line breaks first
(only when every tag is free of quotes and inner braces, so the tags are provably the lexer's), and the
lexer's scan for the next tag is one greedy character class instead of a lazy match at every character.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from evalkit.lint.config import LintConfig, as_globs, matches

JINJA_SUFFIXES = (".j2", ".jinja", ".jinja2")
ENGINE_SUFFIXES = {".gotmpl": "go", ".hbs": "handlebars", ".handlebars": "handlebars", ".mustache": "mustache",
                   ".liquid": "liquid", ".njk": "nunjucks"}
ENGINE_NAMES = {"jinja2": "jinja2", "go": "Go text/template", "handlebars": "Handlebars", "mustache": "mustache",
                "semantic-kernel": "Semantic Kernel", "liquid": "Liquid", "django": "Django templates",
                "nunjucks": "Nunjucks", "none": "no template engine"}

_DELIMITER = re.compile(r"\{[{%#]")
_FENCED = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[^\n]*\n.*?(?:^[ \t]{0,3}\1[ \t]*$|\Z)", re.MULTILINE | re.DOTALL)
_GO = re.compile(r"\{\{-?\s*(?:\.[A-Za-z_]|\$\.|range\s|end\s*-?\}\}|define\s|template\s\"|block\s\"|with\s\.|if\s+\.|"
                 r"if\s+(?:and|or|not|eq|ne|gt|lt)\s|else\s+if\s|-\s*\}\}|\$[A-Za-z_]\w*\s*:=)")
_SK = re.compile(r"\{\{\s*\$[A-Za-z_]\w*\s*\}\}|\{\{\s*[A-Za-z_][\w-]*[.-][A-Za-z_]\w*\s+\$")
_HANDLEBARS = re.compile(r"\{\{~?[#/](?:each|if|unless|with|message|role|system|user|assistant|lookup|raw)\b|"
                         r"\{\{~?\s*else\s*~?\}\}|\{\{\{\s*[\w.]+\s*\}\}\}|\{\{\s*(?:role|json|concat|set|get)\s+\"|"
                         r"\{\{#?\w+\s+(?:role|name)=")
_MUSTACHE = re.compile(r"\{\{[#^/!>&]\s*[\w.]+\s*\}\}")
_LIQUID = re.compile(r"\{%-?\s*(?:assign|capture|endcapture|unless|endunless|render|schema|endschema|case|when|"
                     r"comment|endcomment|liquid|increment|decrement|tablerow|paginate|form|section|style|javascript)"
                     r"\b|\{\{[^{}]*\|\s*\w+:\s")
_DJANGO = re.compile(r"\{%-?\s*(?:url|csrf_token|load|static|trans|blocktrans|endblocktrans|empty|cycle|now|"
                     r"verbatim|widthratio|spaceless|templatetag|firstof)\b")
_JINJA = re.compile(r"\{%-?\s*(?:if|for|set|macro|block|extends|include|import|from|raw|filter|with|call|elif|else|"
                    r"endif|endfor|endmacro|endblock|endset|endraw|endfilter|endwith|endcall|do|break|continue|"
                    r"autoescape|endautoescape|trans)\b|\{\{-?\s*[A-Za-z_][\w.]*(?:\[[^\]]*\])?\s*(?:\|[^}]*)?-?\}\}"
                    r"|\{\{-?\s*[A-Za-z_][\w.]*\s*\(|\{#")


@dataclass(frozen=True)
class Engine:
    """What a file is: ``jinja2`` (checked), ``none`` (no tags), or another engine (noted, not checked)."""

    name: str
    reason: str
    """How it was decided: ``suffix .gotmpl``, ``lint.templates``, ``rendered by suites/x.yaml``, ``detected …``."""

    @property
    def checked(self) -> bool:
        return self.name == "jinja2"


def front_matter_engine(text: str) -> str | None:
    """A ``.prompty`` file's ``template:`` (``jinja2`` unless it names another)."""
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    head = text[3:end] if end > 0 else ""
    match = re.search(r"^template:\s*(?:\n\s+type:\s*)?['\"]?([\w-]+)", head, re.MULTILINE)
    return match.group(1).lower() if match else None


def detect(text: str, path: str, config: LintConfig, used_by: str | None = None, markdown: bool = True) -> Engine:
    """The engine ``text`` (from ``path``) is written for."""
    for entry in reversed(config.templates):
        if matches(path, as_globs(entry["glob"])):
            return Engine(entry["engine"], "lint.templates")
    if used_by is not None:
        return Engine("jinja2", f"rendered by {used_by}")
    if "{{" not in text and "{%" not in text and "{#" not in text:
        return Engine("none", "no template tags")
    lower = path.lower()
    suffix = lower[lower.rfind("."):] if "." in lower.rsplit("/", 1)[-1] else ""
    if suffix in JINJA_SUFFIXES:
        return Engine("jinja2", f"suffix {suffix}")
    if suffix in ENGINE_SUFFIXES:
        return Engine(ENGINE_SUFFIXES[suffix], f"suffix {suffix}")
    if suffix == ".prompty":
        named = front_matter_engine(text) or "jinja2"
        return Engine("jinja2" if named in ("jinja2", "jinja") else named, f"prompty template: {named}")
    if "{{" not in text and "{%" not in text and "{#" not in text:
        return Engine("none", "no template tags")
    seen = _tags_in_prose(text, markdown)
    if not seen:
        return Engine("none", "template tags only inside code")
    # The markers are looked for in the tags alone (a few hundred characters), not in the whole text.
    for name, pattern in (("go", _GO), ("semantic-kernel", _SK), ("handlebars", _HANDLEBARS),
                          ("mustache", _MUSTACHE), ("liquid", _LIQUID), ("django", _DJANGO)):
        found = pattern.search(seen)
        if found:
            return Engine(name, f"detected {found.group().strip()[:40]!r}")
    if _JINJA.search(seen):
        return Engine("jinja2", "detected jinja2 tags")
    return Engine("none", "braces that are no engine's tags")


_TAG_OPENING = re.compile(r"\{[{%#][^\n]{0,200}")


def _tags_in_prose(text: str, markdown: bool) -> str:
    """Each ``{{``/``{%``/``{#`` with the rest of its line, outside code (for Markdown-like files), one a line."""
    fences = _fenced_ranges(text) if markdown and ("```" in text or "~~~" in text) else []
    found = []
    for match in _TAG_OPENING.finditer(text):
        start = match.start()
        if fences and any(a <= start < b for a, b in fences):
            continue
        if markdown:
            line_start = text.rfind("\n", 0, start) + 1
            before = text[line_start:start]
            if before.count("`") % 2 == 1:  # inside an inline code span
                continue
        found.append(match.group())
    return "\n".join(found)


def _fenced_ranges(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _FENCED.finditer(text)]


# ---- exact, fast jinja2 parse ------------------------------------------------------------------------------


@functools.cache
def environment() -> Any:
    """A default ``jinja2.Environment`` whose lexer finds the next tag with one greedy scan.

    jinja2's root rule is ``(.*?)(?:{%…|{{…|{#…)``: the data before the leftmost ``{%``, ``{{`` or ``{#``. The
    same data is ``[^{]*(?:\\{(?![{%#])[^{]*)*``, which the regex engine runs without trying the alternation at
    every character. The tests compare both lexers token by token.
    """
    import jinja2
    from jinja2.lexer import Lexer, _Rule

    class FastLexer(Lexer):
        def __init__(self, env: jinja2.Environment) -> None:
            super().__init__(env)
            rule = self.rules["root"][0]
            pattern = rule.pattern.pattern
            if pattern.startswith("(.*?)(?:") and env.block_start_string == "{%" and \
                    env.variable_start_string == "{{" and env.comment_start_string == "{#":
                fast = re.compile(r"([^{]*(?:\{(?![{%#])[^{]*)*)" + pattern[len("(.*?)"):], re.M | re.S)
                self.rules["root"][0] = _Rule(fast, rule.tokens, rule.command)

    class FastEnvironment(jinja2.Environment):
        @property
        def lexer(self) -> Lexer:
            found: Lexer | None = self.__dict__.get("_fast_lexer")
            if found is None:
                found = self.__dict__["_fast_lexer"] = FastLexer(self)
            return found

    return FastEnvironment()


_TAG_SPAN = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_NEWLINES = re.compile(r"\r\n|\r|\n")
_UNSAFE_IN_TAG = re.compile(r"[{}'\"]|\braw\b")


def reduce(text: str) -> str | None:
    """The text with what lies between tags replaced by its line breaks; None when that is not provably exact.

    Exact when every tag the regex finds is the lexer's: no quotes (a string may hold a closing delimiter), no
    braces besides the delimiters (the lexer balances them), no ``raw`` (its body is not lexed), and no
    opening delimiter left between the tags (an unclosed ``{{`` the regex could not pair).
    """
    out: list[str] = []
    position = 0
    crlf = "\r" if "\r" in text else None  # without a carriage return, a line break is one "\n"
    for match in _TAG_SPAN.finditer(text):
        tag = match.group()
        if _UNSAFE_IN_TAG.search(tag, 2, len(tag) - 2) or _DELIMITER.search(text, position, match.start()):
            return None  # a quote or brace in a tag, or a delimiter the regex left in data (`{{x}` unclosed)
        if match.start() > position:
            out.append("\n" * text.count("\n", position, match.start()) if crlf is None else
                       "".join(_NEWLINES.findall(text, position, match.start())))
        out.append(tag)
        position = match.end()
    if _DELIMITER.search(text, position):
        return None
    out.append("\n" * text.count("\n", position) if crlf is None else "".join(_NEWLINES.findall(text, position)))
    return "".join(out)


@dataclass(frozen=True)
class Parsed:
    """A jinja2 parse: the tree, or the syntax error's line and message (or, for a template whose only tags are
    ``{{ name }}``, the names and their lines without building a tree)."""

    ast: Any = None
    error: tuple[int, str] | None = None
    names: dict[str, int] | None = None


_SIMPLE_VARIABLE = re.compile(r"\{\{-?\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:-\}\}\s*|\}\})")
_NOT_NAMES = frozenset({"true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if",
                        "else"})


def _simple(text: str) -> dict[str, int] | None:
    """Names → first line, when every tag the lexer would find is ``{{ name }}``; else None.

    Walks the text as jinja2's lexer does (data up to the leftmost ``{{``/``{%``/``{#``, then the tag), so
    ``{{{ x }}`` or a ``{%`` anywhere sends the text to the real parser. Such a template always parses, and its
    tree holds exactly these names on these lines.
    """
    if "{%" in text or "{#" in text or "\r" in text:
        return None
    names: dict[str, int] = {}
    position = 0
    while True:
        start = text.find("{{", position)
        if start < 0:
            return names
        match = _SIMPLE_VARIABLE.match(text, start)
        if match is None or match.group(1) in _NOT_NAMES:
            return None
        names.setdefault(match.group(1), text.count("\n", 0, start) + 1)
        position = match.end()


@functools.lru_cache(maxsize=512)
def parse(text: str) -> Parsed:
    """jinja2's verdict on ``text`` (as ``jinja2.Environment().parse`` gives it)."""
    import jinja2

    simple = _simple(text)
    if simple is not None:
        return Parsed(names=simple)
    env = environment()
    reduced = reduce(text)
    try:
        return Parsed(ast=env.parse(reduced if reduced is not None else text))
    except jinja2.TemplateSyntaxError as first:
        error = first
    if reduced is not None:  # messages may carry character offsets: take them from the text itself
        try:
            return Parsed(ast=env.parse(text))
        except jinja2.TemplateSyntaxError as full:
            error = full
    return Parsed(error=(error.lineno or 1, error.message or "syntax error"))


def variables(parsed: Parsed) -> dict[str, int]:
    """Undeclared variables → first line used (names the template binds, and jinja2's globals, excluded)."""
    from jinja2 import nodes

    if parsed.names is not None:
        implicit = {"loop", "caller", "varargs", "kwargs"}
        found = {n: line for n, line in parsed.names.items() if n not in environment().globals and n not in implicit}
        return dict(sorted(found.items(), key=lambda item: (item[1], item[0])))
    ast = parsed.ast
    if ast is None:
        return {}
    # jinja2.meta.find_undeclared_variables runs the whole code generator to get this, which costs more than
    # the parse; scoping is ignored here, which can only hide a finding.
    bound = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
    bound |= {m.name for m in ast.find_all(nodes.Macro)} | set(environment().globals) | {"loop", "caller",
                                                                                       "varargs", "kwargs"}
    lines: dict[str, int] = {}
    for node in ast.find_all(nodes.Name):
        if node.ctx == "load" and node.name not in bound:
            lines.setdefault(node.name, node.lineno)
    return dict(sorted(lines.items(), key=lambda item: (item[1], item[0])))


def includes(parsed: Parsed) -> list[tuple[str, int]]:
    """Templates this one includes, imports or extends by a constant name: (name, line)."""
    from jinja2 import nodes

    if parsed.ast is None:
        return []
    found = []
    for node in parsed.ast.find_all((nodes.Include, nodes.Extends, nodes.Import, nodes.FromImport)):
        target = node.template
        if isinstance(target, nodes.Const) and isinstance(target.value, str):
            found.append((target.value, node.lineno))
    return sorted(found, key=lambda item: item[1])
