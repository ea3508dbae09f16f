"""A fixed-latency OpenAI-compatible chat server on loopback, for benchmarks.

Every POST to /v1/chat/completions waits LATENCY seconds, then answers a short completion, streamed as
SSE when the request asks for it. Written on raw asyncio streams so it costs little CPU next to the
client under test. Usage: python bench/fixed_latency_server.py PORT LATENCY_MS [MARKER FACTOR]: with a
MARKER, a request whose messages contain it waits FACTOR times as long (a slower prompt, for A/B tests).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

WORDS = ["The", " answer", " is", " forty", "-two", "."]


def _chunk(payload: dict[str, object]) -> bytes:
    data = f"data: {json.dumps(payload)}\n\n".encode()
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _base(request_id: int) -> dict[str, object]:
    return {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": "bench-model", "system_fingerprint": "fp_bench"}


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: float,
                 counter: list[int], slow: tuple[str, float] | None = None) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = json.loads(await reader.readexactly(length)) if length else {}
            counter[0] += 1
            request_id = counter[0]
            marked = slow is not None and slow[0] in json.dumps(body.get("messages", []))
            await asyncio.sleep(latency * (slow[1] if slow is not None and marked else 1.0))
            if body.get("stream"):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                             b"transfer-encoding: chunked\r\nx-request-id: bench-%d\r\n\r\n" % request_id)
                base = _base(request_id)
                writer.write(_chunk({**base, "choices": [{"index": 0, "delta": {"role": "assistant"},
                                                          "finish_reason": None}]}))
                for word in WORDS:
                    writer.write(_chunk({**base, "choices": [{"index": 0, "delta": {"content": word},
                                                              "finish_reason": None}]}))
                writer.write(_chunk({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                                     "usage": {"prompt_tokens": 12, "completion_tokens": len(WORDS),
                                               "total_tokens": 12 + len(WORDS)}}))
                data = b"data: [DONE]\n\n"
                writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n")
            else:
                payload = json.dumps({
                    "id": f"chatcmpl-{request_id}", "object": "chat.completion", "created": int(time.time()),
                    "model": "bench-model", "system_fingerprint": "fp_bench",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(WORDS)},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 12, "completion_tokens": len(WORDS), "total_tokens": 18},
                }).encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                             b"x-request-id: bench-%d\r\n\r\n" % (len(payload), request_id) + payload)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError):
        pass
    finally:
        writer.close()


async def main(port: int, latency_ms: float, slow: tuple[str, float] | None = None) -> None:
    counter = [0]
    server = await asyncio.start_server(lambda r, w: handle(r, w, latency_ms / 1000, counter, slow), "127.0.0.1",
                                        port, backlog=1024)
    print(f"ready {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    marker = (sys.argv[3], float(sys.argv[4])) if len(sys.argv) > 4 else None
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]), marker))
