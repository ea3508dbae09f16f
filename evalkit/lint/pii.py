"""Personal data and secrets in prompts and eval sets: e-mail, phone, payment card (Luhn), national ids, keys.

Eval sets built from production traffic are a compliance risk; matches are always shown redacted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){2,4}"
                    r"|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|\b\d{3}[.-]\d{3}[.-]\d{4})(?![\w])")
_NATIONAL_ID = re.compile(r"\b(?:\d{3}-\d{2}-\d{4}|[A-CEGHJ-PR-TW-Z]{2}\d{6}[A-D])\b")
_API_KEY = re.compile(
    r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|glpat-[A-Za-z0-9_-]{20,})"
)


_KEY_HINTS = ("sk-", "AKIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "xox", "AIza", "glpat-")


def has_digit(text: str) -> bool:
    """Ten substring tests run at memchr speed; a regex scan of the text is several times slower."""
    return any(digit in text for digit in "0123456789")


@dataclass(frozen=True)
class Match:
    kind: str
    start: int
    end: int
    redacted: str


def redact(value: str) -> str:
    """Keeps the first two and last two characters: ``4111…1111`` → ``41…11``."""
    compact = value.strip()
    if len(compact) <= 6:
        return "*" * len(compact)
    return f"{compact[:2]}{'*' * (len(compact) - 4)}{compact[-2:]}"


def luhn(digits: str) -> bool:
    """The Luhn checksum payment card numbers carry."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def find(text: str) -> Iterator[Match]:
    """Every match, cheapest filters first (no '@': no e-mail; no digit: no number)."""
    if "@" in text:
        for m in _EMAIL.finditer(text):
            yield Match("e-mail address", m.start(), m.end(), redact(m.group()))
    taken: list[tuple[int, int]] = []
    if has_digit(text):
        for m in _CARD.finditer(text):
            digits = re.sub(r"\D", "", m.group())
            if 13 <= len(digits) <= 19 and luhn(digits):
                taken.append((m.start(), m.end()))
                yield Match("payment card number", m.start(), m.end(), redact(digits))
        for m in _NATIONAL_ID.finditer(text):
            yield Match("national id number", m.start(), m.end(), redact(m.group()))
        for m in _PHONE.finditer(text):
            if not any(a <= m.start() < b for a, b in taken) and len(re.sub(r"\D", "", m.group())) >= 10:
                yield Match("phone number", m.start(), m.end(), redact(m.group()))
    for m in _API_KEY.finditer(text) if any(hint in text for hint in _KEY_HINTS) else ():
        yield Match("API key", m.start(), m.end(), redact(m.group()))
