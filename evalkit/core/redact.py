"""Secrets never reach a file or a log: configured keys and common key shapes are cut from messages.

Some providers echo the API key in an error body, fully or as a prefix (``Incorrect API key provided:
sk-abc123…``). Every key evalkit reads is remembered here (:func:`remember`), and every provider message
and output stored or printed passes :func:`redact` first.
"""

from __future__ import annotations

import re
import threading

MASK = "[REDACTED]"
MIN_ECHO = 6
"""A run of at least this many characters of a key (a prefix, a suffix or any slice) counts as an echo."""

KEY_SHAPES = re.compile(
    r"\b(?:"
    r"sk-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_\-]{12,}"  # OpenAI / Anthropic style
    r"|sk_(?:live|test)_[A-Za-z0-9]{12,}|rk_(?:live|test)_[A-Za-z0-9]{12,}"  # Stripe
    r"|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}"  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"  # GitHub
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}"  # Slack
    r"|hf_[A-Za-z0-9]{20,}"  # Hugging Face
    r"|AIza[0-9A-Za-z_\-]{30,}"  # Google API keys
    r"|eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"  # JWTs
    r")"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/\-]{12,}=*"
)
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=\-]{" + str(MIN_ECHO) + ",}")

_lock = threading.Lock()
_secrets: set[str] = set()


def remember(secret: str) -> None:
    """Registers a secret evalkit read (an API key from the environment) for redaction."""
    if len(secret) >= MIN_ECHO:
        with _lock:
            _secrets.add(secret)


def _echoes(token: str, secret: str) -> bool:
    """Whether a token of a message reproduces part of a secret (masked stars and dots stripped)."""
    core = token.strip("*.…")
    if len(core) < MIN_ECHO:
        return False
    return core in secret or secret in core


def redact(text: str | None, *, shapes: bool = True) -> str | None:
    """The text with every remembered secret (or a run of one) masked, and common key shapes too.

    ``shapes=False`` masks only the remembered secrets: for model output, where a key-like string may be
    what the case is about, but a configured key must still never be stored.
    """
    if not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    if secrets:
        text = _TOKEN.sub(lambda m: MASK if any(_echoes(m.group(0), s) for s in secrets) else m.group(0), text)
    return KEY_SHAPES.sub(MASK, text) if shapes else text
