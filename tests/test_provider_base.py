"""Retry accounting primitives: retry-after parsing, backoff, stop-reason normalisation."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from evalkit.providers.base import RetryPolicy, estimate_tokens, normalise_stop, parse_retry_after, status_class
from evalkit.providers.openai import endpoint_host


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (parse_retry_after({"retry-after": when}) or 0) <= 30
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_backoff_never_undercuts_retry_after_and_is_capped() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=4, max_retry_after_s=60)
    rng = random.Random(1)
    for attempt in range(1, 8):
        assert 0 <= policy.backoff(attempt, rng, None) <= 4
        assert policy.backoff(attempt, rng, 7.0) >= 7.0
    assert policy.backoff(1, rng, 500.0) == 60


def test_backoff_is_seeded() -> None:
    policy = RetryPolicy()
    first = [policy.backoff(n, random.Random(5), None) for n in range(1, 4)]
    assert first == [policy.backoff(n, random.Random(5), None) for n in range(1, 4)]


@pytest.mark.parametrize(("raw", "normal"), [
    ("stop", "complete"), ("end_turn", "complete"), ("length", "length"), ("max_tokens", "length"),
    ("content_filter", "content_filter"), ("refusal", "content_filter"), ("tool_calls", "tool_call"),
    ("tool_use", "tool_call"), (None, "complete"),
])
def test_stop_reasons(raw: str | None, normal: str) -> None:
    assert normalise_stop(raw) == normal


@pytest.mark.parametrize(("status", "kind"), [(429, "rate_limit"), (500, "server"), (503, "server"),
                                              (529, "server"), (408, "timeout"), (401, "auth"), (400, "client")])
def test_status_classes(status: int, kind: str) -> None:
    assert status_class(status) == kind


def test_endpoint_host_drops_credentials_and_paths() -> None:
    assert endpoint_host("https://user:secret@api.example.com:8443/v1?key=x", "") == "api.example.com:8443"
    assert endpoint_host(None, "https://api.openai.com/v1") == "api.openai.com"


def test_token_estimate() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
