"""A provider factory for an OpenAI-compatible llama.cpp server at ``base_url`` (``provider: tests.judge_llamacpp:at``).

The built-in ``openai`` provider speaks OpenAI's ``json_schema`` response format, which llama-cpp-python's
server rejects; this opens the same OpenAIProvider in the llama.cpp dialect (as the ``local`` provider does).
"""

from __future__ import annotations

from evalkit.providers.base import ProviderSpec
from evalkit.providers.openai import OpenAIProvider


def at(spec: ProviderSpec) -> OpenAIProvider:
    return OpenAIProvider(api_key="unused", base_url=spec.base_url, name="llama.cpp", timeout=spec.timeout,
                          schema_dialect="llama.cpp")
