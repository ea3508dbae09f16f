"""Personal data and live secrets in text: e-mail, phone, payment card, IBAN, national ids, API keys, tokens.

Precision first, because a detector that cries wolf gets switched off:

- e-mail: the domain's last label must be a real top-level domain; RFC 2606/6761 reserved names
  (``example.com``, ``*.example``, ``*.test``, ``*.invalid``, ``*.localhost``), placeholders
  (``_____@gmail.com``, ``your.name@…``) and git's ``git@host`` remotes are not addresses of anyone;
- payment card: issuer prefix and length (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro),
  then Luhn; separators must be consistent; documented test cards (``4111 1111 1111 1111``) are skipped;
- phone: North American numbers with a valid area code and exchange (written with separators, or compact
  after ``+1``), outside the fictional 555-0100…0199;
  French numbers (``06 12 34 56 78``, ``+33 6 …``); other numbers only with a ``+`` country code;
- IBAN: country length and the ISO 13616 mod-97 check; US SSN with the SSA's validity rules; UK NI numbers;
- keys: OpenAI, Anthropic, AWS, GitHub, Slack, Google, GitLab, Stripe live, Hugging Face, JWTs and
  private-key blocks (a header followed by key material); placeholders and documented examples
  (``AKIAIOSFODNN7EXAMPLE``, jwt.io's sample token) are skipped.

Numbers, addresses and ids inside a URL are parts of the URL (a tweet id, a millisecond timestamp), not
personal data; keys are reported wherever they are. Values in an allowlist are never reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from evalkit.text.tlds import TLDS

__all__ = ["Match", "find", "has_digit", "load_allowlist", "luhn", "redact", "redact_spans"]


@dataclass(frozen=True)
class Match:
    """One value found in a text, with its redacted form."""

    kind: str
    start: int
    end: int
    redacted: str


def has_digit(text: str) -> bool:
    """Ten substring tests run at memchr speed; a regex scan of the text is several times slower."""
    return any(digit in text for digit in "0123456789")


def redact(value: str) -> str:
    """Keeps the first two and last two characters: ``4111…1111`` → ``41…11``; short values are all stars."""
    compact = value.strip()
    if len(compact) <= 6:
        return "*" * len(compact)
    return f"{compact[:2]}{'*' * (len(compact) - 4)}{compact[-2:]}"


def redact_spans(text: str, matches: Iterable[Match], offset: int = 0) -> str:
    """``text`` (which starts at ``offset`` of the scanned text) with every match that touches it redacted."""
    out: list[str] = []
    position = 0
    for match in sorted(matches, key=lambda m: m.start):
        start, end = match.start - offset, match.end - offset
        if end <= position or start >= len(text):
            continue
        start = max(start, position)
        out.append(text[position:start])
        out.append(match.redacted if match.start - offset >= 0 else "*" * (min(end, len(text)) - start))
        position = min(end, len(text))
    out.append(text[position:])
    return "".join(out)


def luhn(digits: str) -> bool:
    """The Luhn checksum payment card numbers carry."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def load_allowlist(path: str | Path) -> frozenset[str]:
    """Values never reported: one a line, ``#`` starts a comment. Numbers also match without separators."""
    values = set()
    for line in Path(path).read_text("utf-8").splitlines():
        value = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if value:
            values.add(value)
            compact = re.sub(r"[\s.()-]", "", value)
            if "@" not in value and compact != value:  # 212 867 5309 also allows 2128675309
                values.add(compact)
    return frozenset(values)


_SIX_DIGITS = re.compile(r"\d(?:[ ().-]{0,2}\d){5}")
_URL = re.compile(r"(?:\b[a-z][a-z0-9+.-]*://|\bwww\.)[^\s<>\"'`\]\)]+", re.IGNORECASE)

_EMAIL = re.compile(r"(?<![\w.+-])([A-Za-z0-9._%+-]+)@((?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+"
                    r"([A-Za-z]{2,}|xn--[a-z0-9-]+))(?![\w-]|\.[A-Za-z0-9])")
_RESERVED_DOMAINS = ("example.com", "example.net", "example.org", "example.edu")
_RESERVED_TLDS = frozenset({"example", "test", "invalid", "localhost", "local", "internal", "lan", "home", "corp"})
_PLACEHOLDER_LOCAL = re.compile(
    r"[_x*.\-#]+|(?:your|my|the|some|an?)?[._-]?(?:user(?:name)?|e?mail|name|first[._-]?(?:name)?[._-]?last(?:name)?"
    r"|first|last|john[._-]?doe|jane[._-]?doe|someone|somebody|foo|bar|baz|test|example|sample|address|me|you"
    r"|recipient|sender|customer|contact|account|login|handle|id)\d*|x+[._-]?x+", re.IGNORECASE)
_SERVICE_LOCAL = frozenset({"git", "noreply", "no-reply", "donotreply", "do-not-reply", "mailer-daemon", "postmaster"})

_CARD = re.compile(r"(?<![\w.,/-])\d{4}([ -]?)\d{2,6}(?:\1\d{1,6}){1,3}(?![\w-]|[.,]\d)")
_TEST_CARDS = frozenset({
    "4111111111111111", "4242424242424242", "4012888888881881", "4000056655665556", "4000000000000002",
    "4222222222222", "5555555555554444", "5105105105105100", "5200828282828210", "2223003122003222",
    "378282246310005", "371449635398431", "378734493671000", "6011111111111117", "6011000990139424",
    "6011000000000004", "3530111333300000", "3566002020360505", "30569309025904", "38520000023237",
    "36227206271667", "6200000000000005", "6759649826438453",
})

_NANP = re.compile(r"(?<![\w+.-])(?:\+?1[ .-]?)?(?:\(([2-9]\d\d)\)[ .-]?|([2-9]\d\d)([ .-]))([2-9]\d\d)([ .-])(\d{4})"
                   r"(?![\w-]|\.\d)")
_NANP_COMPACT = re.compile(r"(?<![\w+])\+1[ .-]?()([2-9]\d\d)()([2-9]\d\d)()(\d{4})(?![\w-]|\.\d)")
_FRENCH = re.compile(r"(?<![\w+.-])(?:\+33[ .]?(?:\(0\)[ .]?)?|0)[1-9](?:([ .-]?)\d{2})(?:\1\d{2}){3}(?![\w-]|\.\d)")
_INTERNATIONAL = re.compile(r"(?<![\w+])\+[1-9]\d{0,2}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]\d{2,4}){1,4}"
                            r"(?![\w-]|\.\d)")

_SSN = re.compile(r"(?<![\w-])(\d{3})-(\d{2})-(\d{4})(?![\w-])")
_SSN_EXAMPLES = frozenset({"078-05-1120", "219-09-9999", "123-45-6789", "000-00-0000"})
_NINO = re.compile(r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")

_IBAN = re.compile(r"\b([A-Z]{2})(\d{2})((?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?)\b")
_IBAN_COUNTRIES = (  # country code and IBAN length, as the SWIFT IBAN registry lists them
    "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DJ27 DK18 DO28 EE20 "
    "EG29 ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 HU28 IE22 IL23 IQ23 IS26 IT27 JO30 KW30 "
    "KZ20 LB28 LC32 LI21 LT20 LU20 LV21 LY25 MC27 MD24 ME22 MK19 MN20 MR27 MT31 MU30 NI28 NL18 NO15 OM23 PK24 "
    "PL28 PS29 QA29 RO24 RS22 RU33 SA24 SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25 SV28 TL23 TN24 TR26 UA29 VA22 "
    "VG24 XK20 YE30"
)
_IBAN_LENGTHS = {item[:2]: int(item[2:]) for item in _IBAN_COUNTRIES.split()}
# The examples printed by the ECBS/SWIFT IBAN registry and by most banks' documentation.
_IBAN_EXAMPLES = frozenset({"GB82WEST12345698765432", "DE89370400440532013000", "FR1420041010050500013M02606",
                            "NL91ABNA0417164300", "GB29NWBK60161331926819", "ES9121000418450200051332",
                            "CH9300762011623852957", "BE68539007547034", "IT60X0542811101000000123456"})

_KEYS: Sequence[tuple[str, tuple[str, ...], re.Pattern[str]]] = [
    (kind, (hint,) if isinstance(hint, str) else hint, re.compile(pattern)) for kind, hint, pattern in (
        ("Anthropic API key", "sk-ant-", r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
        ("OpenAI API key", "sk-", r"(?<![\w-])sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
        ("AWS access key id", ("AKIA", "ASIA", "ABIA", "ACCA"), r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
        ("GitHub token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
        ("GitHub token", "github_pat_", r"\bgithub_pat_[A-Za-z0-9_]{40,}\b"),
        ("Slack token", "xox", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
        ("Google API key", "AIza", r"\bAIza[0-9A-Za-z_-]{35}(?![\w-])"),
        ("GitLab token", "glpat-", r"\bglpat-[A-Za-z0-9_-]{20,}"),
        ("Stripe live key", "_live_", r"\b(?:sk|rk)_live_[0-9A-Za-z]{16,}\b"),
        ("Hugging Face token", "hf_", r"\bhf_[A-Za-z0-9]{30,}\b"),
        ("JSON Web Token", "eyJ", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{10,}"),
        ("private key", "PRIVATE KEY", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[ \t]*\r?\n"
                                       r"(?:[A-Za-z-]+: [^\n]*\n|[ \t]*\r?\n)*[ \t]*[A-Za-z0-9+/=]{40,}"),
    )
]
_PLACEHOLDER_KEY = re.compile(r"example|xxxx|your|placeholder|dummy|fake|redacted|sample|insert|replace|\.\.\.|<|\*{3}",
                              re.IGNORECASE)
# jwt.io's sample token signature; AWS's documented secret key.
_DOCUMENTED_KEYS = frozenset({"SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
                              "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"})


def _email(match: re.Match[str]) -> bool:
    local, domain, tld = match.group(1), match.group(2).lower(), match.group(3).lower()
    if tld not in TLDS or tld in _RESERVED_TLDS:
        return False
    if domain in _RESERVED_DOMAINS or domain.endswith(tuple("." + d for d in _RESERVED_DOMAINS)):
        return False
    return local.lower() not in _SERVICE_LOCAL and not _PLACEHOLDER_LOCAL.fullmatch(local)


def _card(digits: str) -> bool:
    length = len(digits)
    if not 12 <= length <= 19 or digits in _TEST_CARDS or len(set(digits)) < 4 or not luhn(digits):
        return False
    two, three, four, six = int(digits[:2]), int(digits[:3]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4":
        return length in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return length == 16
    if two in (34, 37):
        return length == 15
    if four == 6011 or 644 <= three <= 649 or two == 65 or 622126 <= six <= 622925:
        return 16 <= length <= 19
    if 3528 <= four <= 3589:
        return 16 <= length <= 19
    if 300 <= three <= 305 or two in (36, 38, 39):
        return 14 <= length <= 19
    if two == 62:
        return 16 <= length <= 19
    if two == 50 or 56 <= two <= 69:
        return 12 <= length <= 19
    return False


def _card_shape(text: str, separator: str) -> bool:
    """Written as one run of digits, or in the groups cards are printed in (4-4-4-4, 4-6-5, 4-6-4)."""
    if not separator:
        return True
    groups = [len(g) for g in text.split(separator)]
    return ((all(g == 4 for g in groups[:-1]) and 1 <= groups[-1] <= 4)
            or (groups[:2] == [4, 6] and len(groups) == 3))


def _iban(country: str, check: str, rest: str) -> bool:
    compact = f"{country}{check}{rest.replace(' ', '')}"
    if _IBAN_LENGTHS.get(country) != len(compact) or compact in _IBAN_EXAMPLES:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def _ssn(match: re.Match[str]) -> bool:
    area, group, serial = match.group(1), match.group(2), match.group(3)
    return (area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"
            and match.group() not in _SSN_EXAMPLES)


def _nanp(match: re.Match[str]) -> bool:
    area = match.group(1) or match.group(2)
    exchange, line = match.group(4), match.group(6)
    if match.group(3) and match.group(3) != match.group(5):
        return False  # 415-555.0132: inconsistent separators are not a phone number as people write one
    if area[1:] == "11" or exchange[1:] == "11" or area == "555":
        return False
    return not (exchange == "555" and line.startswith("01"))  # 555-0100 to 555-0199 are reserved for fiction


def find(text: str, allow: frozenset[str] = frozenset()) -> list[Match]:
    """Every value found, in order, none overlapping; cheap substring tests decide which scans run."""
    found: list[Match] = []
    urls = [(m.start(), m.end()) for m in _URL.finditer(text)] if "://" in text or "www." in text else []

    def outside_urls(start: int) -> bool:
        return not any(a <= start < b for a, b in urls)

    def add(kind: str, start: int, end: int, shown: str | None = None) -> None:
        raw = text[start:end]
        if raw in allow or re.sub(r"[\s.()-]", "", raw) in allow:
            return
        found.append(Match(kind, start, end, redact(shown if shown is not None else raw)))

    if "@" in text:
        for m in _EMAIL.finditer(text):
            if _email(m) and outside_urls(m.start()):
                add("e-mail address", m.start(), m.end())
    # Every number below has at least six digits in a row (separators aside): one scan rules all of them out.
    if has_digit(text) and _SIX_DIGITS.search(text):
        for m in _CARD.finditer(text):
            digits = re.sub(r"\D", "", m.group())
            if _card_shape(m.group(), m.group(1)) and _card(digits) and outside_urls(m.start()):
                add("payment card number", m.start(), m.end(), digits)
        for m in _SSN.finditer(text) if "-" in text else ():
            if _ssn(m) and outside_urls(m.start()):
                add("US social security number", m.start(), m.end())
        for m in _NINO.finditer(text):
            if outside_urls(m.start()):
                add("UK national insurance number", m.start(), m.end())
        for m in _IBAN.finditer(text):
            if _iban(m.group(1), m.group(2), m.group(3)) and outside_urls(m.start()):
                add("IBAN", m.start(), m.end())
        for pattern in (_NANP, _NANP_COMPACT):
            for m in pattern.finditer(text):
                if _nanp(m) and outside_urls(m.start()):
                    add("phone number", m.start(), m.end())
        for m in _FRENCH.finditer(text):
            if outside_urls(m.start()):
                add("phone number", m.start(), m.end())
        for m in _INTERNATIONAL.finditer(text) if "+" in text else ():
            digits = re.sub(r"\D", "", m.group())
            if 8 <= len(digits) <= 15 and outside_urls(m.start()) and not m.group().startswith("+1"):
                add("phone number", m.start(), m.end())
    for kind, hints, pattern in _KEYS:
        if not any(hint in text for hint in hints):
            continue
        for m in pattern.finditer(text):
            value = m.group()
            body = value.split(".")[-1] if kind == "JSON Web Token" else value
            if _PLACEHOLDER_KEY.search(value) or body in _DOCUMENTED_KEYS or len(set(body)) < 8:
                continue
            add(kind, m.start(), m.end(), value if kind != "private key" else "-----BEGIN PRIVATE KEY-----")
    found.sort(key=lambda m: (m.start, -m.end, m.kind))
    kept: list[Match] = []
    for match in found:  # one value, one finding: the earliest, longest reading wins
        if kept and match.start < kept[-1].end:
            continue
        kept.append(match)
    return kept
