"""Loopback HTTP servers the tests put between the SDKs and the real local model.

- :class:`FaultProxy` forwards OpenAI-style requests to the llama.cpp server, after answering the first
  requests with scripted faults (429 with retry-after, 500, a dropped connection, a drop mid-stream, a hang).
- :class:`AnthropicAdapter` speaks the Anthropic Messages API (streamed SSE) and forwards each request to
  the local model's chat endpoint, so the anthropic SDK path runs over real HTTP against a real model.

Both listen on 127.0.0.1 only and hold at most a bounded number of scripted faults.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Base:
    """A threaded loopback server with start/stop and a record of what it received."""

    handler: type[BaseHTTPRequestHandler]

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        handler = type("Handler", (self.handler,), {"owner": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> _Base:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def upstream_stream(self, path: str, body: bytes) -> tuple[int, dict[str, str], Iterator[bytes]]:
        """POSTs to the model server; returns status, headers and an iterator of body pieces."""
        connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()

        def pieces() -> Iterator[bytes]:
            try:
                while True:
                    piece = response.read1(65536)
                    if not piece:
                        return
                    yield piece
            finally:
                connection.close()

        return response.status, {k.lower(): v for k, v in response.getheaders()}, pieces()


class _Handler(BaseHTTPRequestHandler):
    owner: Any
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        return

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def do_GET(self) -> None:
        self._json(200, {"object": "list", "data": []})


class _FaultHandler(_Handler):
    def do_POST(self) -> None:
        body = self._body()
        fault = self.owner.next_fault()
        with self.owner._lock:
            self.owner.received.append({"path": self.path, "fault": fault, "at": time.monotonic()})
        kind, _, arg = (fault or "").partition(":")
        if kind == "429":
            self._json(429, {"error": {"message": "rate limited (injected)", "type": "rate_limit"}},
                       {"retry-after": arg or "1"})
            return
        if kind.isdigit():
            self._json(int(kind), {"error": {"message": f"HTTP {kind} (injected)", "type": "injected"}})
            return
        if kind == "drop":
            self.close_connection = True
            self.connection.close()
            return
        if kind == "hang":
            time.sleep(float(arg or 5))
            self.close_connection = True
            return
        status, headers, pieces = self.owner.upstream_stream(self.path, body)
        self.send_response(status)
        self.send_header("Content-Type", headers.get("content-type", "application/json"))
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", f"proxy-{uuid.uuid4().hex[:12]}")
        self.end_headers()
        for index, piece in enumerate(pieces):
            self._chunk(piece)
            if kind == "drop-mid-stream" and index >= 1:
                # Close without the terminating chunk: the client sees an incomplete chunked body.
                self.close_connection = True
                self.connection.shutdown(2)
                return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class FaultProxy(_Base):
    """Forwards to the model server; the first requests get the scripted faults, in order."""

    handler = _FaultHandler

    def __init__(self, upstream: str, faults: list[str]) -> None:
        super().__init__(upstream)
        self.faults = list(faults)

    def next_fault(self) -> str | None:
        with self._lock:
            return self.faults.pop(0) if self.faults else None


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class _AnthropicHandler(_Handler):
    def do_POST(self) -> None:
        request = json.loads(self._body())
        with self.owner._lock:
            headers = {k.lower(): v for k, v in self.headers.items()}
            self.owner.received.append({"path": self.path, "headers": headers, "body": request})
        if self.path.rstrip("/") != "/v1/messages":
            self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})
            return
        messages = [{"role": "system", "content": request["system"]}] if request.get("system") else []
        messages += [{"role": m["role"], "content": m["content"]} for m in request["messages"]]
        upstream = {"model": request["model"], "messages": messages, "stream": True,
                    "max_tokens": request["max_tokens"]}
        for key in ("temperature", "top_p", "stop_sequences"):
            if key in request:
                upstream["stop" if key == "stop_sequences" else key] = request[key]
        status, _, pieces = self.owner.upstream_stream(
            "/v1/chat/completions", json.dumps(upstream).encode())
        if status != 200:
            self._json(status, {"type": "error", "error": {"type": "api_error", "message": "upstream failed"}})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", f"req_{uuid.uuid4().hex[:16]}")
        self.end_headers()
        message_id = f"msg_{uuid.uuid4().hex[:16]}"
        model = request["model"]
        # The Messages API reports input tokens up front; llama.cpp's stream reports none, so the
        # adapter asks the model server's tokenizer, which is the real count for this model.
        input_tokens = self.owner.count_tokens(" ".join(m["content"] for m in messages))
        self._chunk(_sse("message_start", {"type": "message_start", "message": {
            "id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 0}}}))
        self._chunk(_sse("content_block_start", {"type": "content_block_start", "index": 0,
                                                  "content_block": {"type": "text", "text": ""}}))
        output_tokens, finish, buffer = 0, None, b""
        for piece in pieces:
            buffer += piece
            while b"\n\n" in buffer:
                frame, buffer = buffer.split(b"\n\n", 1)
                line = frame.decode().strip()
                if not line.startswith("data:") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[5:])
                for choice in chunk.get("choices", []):
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        output_tokens += 1
                        self._chunk(_sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                                 "delta": {"type": "text_delta", "text": text}}))
                    finish = choice.get("finish_reason") or finish
        stop = {"stop": "end_turn", "length": "max_tokens"}.get(finish or "stop", "end_turn")
        self._chunk(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        self._chunk(_sse("message_delta", {"type": "message_delta",
                                           "delta": {"stop_reason": stop, "stop_sequence": None},
                                           "usage": {"output_tokens": output_tokens}}))
        self._chunk(_sse("message_stop", {"type": "message_stop"}))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class AnthropicAdapter(_Base):
    """An Anthropic Messages API endpoint backed by the local model."""

    handler = _AnthropicHandler

    @property
    def base_url(self) -> str:
        # The anthropic SDK appends /v1/messages itself.
        return f"http://127.0.0.1:{self.port}"

    def count_tokens(self, text: str) -> int:
        connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)
        try:
            connection.request("POST", "/extras/tokenize", body=json.dumps({"input": text}),
                               headers={"Content-Type": "application/json"})
            return len(json.loads(connection.getresponse().read())["tokens"])
        finally:
            connection.close()


class _CannedHandler(_Handler):
    def do_POST(self) -> None:
        body = json.loads(self._body() or b"{}")
        headers = {k.lower(): v for k, v in self.headers.items()}
        with self.owner._lock:
            self.owner.received.append({"path": self.path, "headers": headers, "body": body, "at": time.monotonic()})
        key = headers.get("authorization", "").removeprefix("Bearer ").strip()
        status, message = self.owner.answer(key)
        if status != 200:
            self._json(status, {"error": {"message": message, "type": "invalid_request_error"}})
            return
        time.sleep(self.owner.delay)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", f"canned-{uuid.uuid4().hex[:8]}")
        self.end_headers()
        base = {"id": f"chatcmpl-{uuid.uuid4().hex[:8]}", "object": "chat.completion.chunk", "created": 0,
                "model": self.owner.model, "system_fingerprint": "fp_canned"}
        for piece in (message, None):
            delta = {"content": piece} if piece else {}
            finish = None if piece else "stop"
            data = json.dumps({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            self._chunk(f"data: {data}\n\n".encode())
        self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class CannedServer(_Base):
    """An OpenAI-compatible endpoint with no model behind it: every call gets the same scripted answer.

    ``answer(key)`` returns (status, text): 200 streams the text as the completion; anything else is an
    error body carrying the text (e.g. a 401 that echoes the caller's key, as some providers do).
    """

    handler = _CannedHandler

    def __init__(self, answer: Any = None, *, delay: float = 0.0, model: str = "canned-model") -> None:
        super().__init__("http://127.0.0.1:9")
        self.answer = answer or (lambda key: (200, "A canned answer."))
        self.delay = delay
        self.model = model
