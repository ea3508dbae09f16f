"""The agent loop with native tool calling over the real openai and anthropic SDKs, against scripted
loopback endpoints speaking each wire protocol: tool definitions, tool-call turns and tool results go out in
each API's form (a failed call as an error text on OpenAI chat, ``is_error`` on Anthropic); limits end the
loop with their reason; a simulated user answers the agent."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from evalkit.runner import RunOptions, run_suite

REPO = Path(__file__).resolve().parent.parent


class Scripted:
    """A loopback endpoint that answers each request with the next scripted turn (a tool call or text)."""

    def __init__(self, dialect: str, turns: list[dict[str, Any]]) -> None:
        self.dialect = dialect
        self.turns = list(turns)
        self.received: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                owner.received.append(body)
                turn = owner.turns.pop(0) if owner.turns else {"text": "(script exhausted)"}
                frames = owner.openai(turn) if owner.dialect == "openai" else owner.anthropic(turn)
                data = b"".join(frames)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        port = self.server.server_address[1]
        return f"http://127.0.0.1:{port}/v1" if self.dialect == "openai" else f"http://127.0.0.1:{port}"

    @staticmethod
    def openai(turn: dict[str, Any]) -> list[bytes]:
        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            data = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "scripted",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(data)}\n\n".encode()

        if "tool" in turn:
            call = {"index": 0, "id": turn["id"], "type": "function",
                    "function": {"name": turn["tool"], "arguments": json.dumps(turn["arguments"])}}
            frames = [chunk({"role": "assistant", "tool_calls": [call]}, None), chunk({}, "tool_calls")]
        else:
            frames = [chunk({"role": "assistant", "content": turn["text"]}, None), chunk({}, "stop")]
        return [*frames, b"data: [DONE]\n\n"]

    @staticmethod
    def anthropic(turn: dict[str, Any]) -> list[bytes]:
        def sse(event: str, data: dict[str, Any]) -> bytes:
            return f"event: {event}\ndata: {json.dumps({'type': event, **data})}\n\n".encode()

        frames = [sse("message_start", {"message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "scripted", "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 0}}})]
        if "tool" in turn:
            frames += [sse("content_block_start", {"index": 0, "content_block": {
                "type": "tool_use", "id": turn["id"], "name": turn["tool"], "input": {}}}),
                sse("content_block_delta", {"index": 0, "delta": {
                    "type": "input_json_delta", "partial_json": json.dumps(turn["arguments"])}})]
            stop = "tool_use"
        else:
            frames += [sse("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
                       sse("content_block_delta", {"index": 0, "delta": {"type": "text_delta",
                                                                         "text": turn["text"]}})]
            stop = "end_turn"
        return [*frames, sse("content_block_stop", {"index": 0}),
                sse("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None},
                                      "usage": {"output_tokens": 3}}),
                sse("message_stop", {})]

    def __enter__(self) -> Scripted:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


SCRIPT = [
    {"tool": "broken", "arguments": {"order_id": "A1001"}, "id": "call_1"},
    {"tool": "echo", "arguments": {"order_id": "A1001"}, "id": "call_2"},
    {"text": "Order A1001 looks fine."},
]


def _suite(write, provider: str, url: str, extra: str = "") -> Path:  # type: ignore[no-untyped-def]
    return write(f"{provider}.yaml", f"""
name: native
target: {{provider: {provider}, model: scripted, base_url: "{url}", params: {{max_tokens: 50}}, max_attempts: 1}}
agent: {{max_turns: 4, max_tool_calls: 3}}
tools:
  echo:
    python: "tests.test_agent_scripts:echo"
    description: Echo the arguments.
    parameters: {{type: object, properties: {{order_id: {{type: string}}}}, required: [order_id]}}
  broken: {{python: "tests.test_agent_scripts:broken", description: Always fails.}}
{extra}cases:
  - {{id: one, user: "Check order A1001", expect: [{{tools: {{used: [broken, echo], order: strict}}}}]}}
""")


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key-not-real")


def test_openai_native_tool_calls(write, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with Scripted("openai", SCRIPT) as server:
        run = run_suite(_suite(write, "openai", server.url), RunOptions(out=tmp_path / "runs"))
    result = run.results[0]
    assert result.passed, result.scores
    assert result.output == "Order A1001 looks fine." and result.trajectory.termination == "complete"
    first, second, third = server.received
    assert [t["function"]["name"] for t in first["tools"]] == ["echo", "broken"]
    assert first["tools"][0]["function"]["parameters"]["required"] == ["order_id"]
    assert second["messages"][-2] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "broken", "arguments": '{"order_id": "A1001"}'}}]}
    error = second["messages"][-1]
    assert error["role"] == "tool" and error["tool_call_id"] == "call_1"
    assert error["content"].startswith("Error: tests.test_agent_scripts:broken raised RuntimeError: order service")
    assert third["messages"][-1] == {"role": "tool", "tool_call_id": "call_2",
                                     "content": '{"echo": {"order_id": "A1001"}}'}
    kinds = [type(s).__name__ for s in result.trajectory.steps]
    assert kinds == ["UserTurn", "CallRecord", "ToolEvent", "CallRecord", "ToolEvent", "CallRecord"]


def test_anthropic_native_tool_calls_with_is_error(write, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = [dict(t, id=t["id"].replace("call", "toolu")) if "id" in t else t for t in SCRIPT]
    with Scripted("anthropic", script) as server:
        run = run_suite(_suite(write, "anthropic", server.url), RunOptions(out=tmp_path / "runs"))
    result = run.results[0]
    assert result.passed, (result.error, result.scores)
    first, second, third = server.received
    assert [t["name"] for t in first["tools"]] == ["echo", "broken"]
    assert first["tools"][0]["input_schema"]["required"] == ["order_id"]
    assert second["messages"][-2] == {"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_1", "name": "broken", "input": {"order_id": "A1001"}}]}
    (block,) = second["messages"][-1]["content"]
    assert second["messages"][-1]["role"] == "user"
    assert block["type"] == "tool_result" and block["tool_use_id"] == "toolu_1" and block["is_error"] is True
    assert "order service unavailable" in block["content"]
    assert third["messages"][-1]["content"][0]["is_error"] is False


def test_max_tool_calls_ends_the_loop(write, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    endless = [{"tool": "echo", "arguments": {"order_id": f"A{i}"}, "id": f"call_{i}"} for i in range(10)]
    with Scripted("openai", endless) as server:
        run = run_suite(_suite(write, "openai", server.url), RunOptions(out=tmp_path / "runs"))
    result = run.results[0]
    assert result.trajectory.termination == "max_tool_calls"
    assert len(result.trajectory.tool_events) == 3 and len(server.received) == 4


def test_simulated_user_answers_the_agent(write, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = [{"text": "Which order do you mean?"}, {"text": "Order A1001, please."},
              {"tool": "echo", "arguments": {"order_id": "A1001"}, "id": "call_9"}, {"text": "Found it."},
              {"text": "DONE"}]
    extra = "user_sim: {instructions: 'You want to know about order A1001.', max_turns: 3}\n"
    with Scripted("openai", script) as server:
        run = run_suite(_suite(write, "openai", server.url, extra), RunOptions(out=tmp_path / "runs"))
    result = run.results[0]
    steps = result.trajectory.steps
    simulated = [s.content for s in steps if type(s).__name__ == "UserTurn" and s.simulated]
    assert simulated == ["Order A1001, please."]
    assert result.output == "Found it." and result.trajectory.termination == "user_ended"
    sim_request = server.received[1]
    assert sim_request["messages"][0]["content"].startswith("You want to know about order A1001.")
    assert sim_request["messages"][-1] == {"role": "user", "content": "Which order do you mean?"}
    assert "tools" not in sim_request
