"""The bare baseline: AsyncOpenAI + a semaphore, streaming each call, nothing else.

Usage: python bench/bare_loop.py BASE_URL CASES CONCURRENCY [--no-stream]
"""

from __future__ import annotations

import asyncio
import sys

from openai import AsyncOpenAI


async def main(base_url: str, cases: int, concurrency: int, stream: bool) -> None:
    client = AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)
    gate = asyncio.Semaphore(concurrency)
    outputs: list[str] = []

    async def one(i: int) -> None:
        async with gate:
            messages = [{"role": "system", "content": "You are a benchmark."},
                        {"role": "user", "content": f"Question number {i}?"}]
            if stream:
                response = await client.chat.completions.create(
                    model="bench-model", messages=messages, stream=True,  # type: ignore[arg-type]
                    stream_options={"include_usage": True}, max_tokens=16)
                outputs.append("".join([c.choices[0].delta.content or "" async for c in response if c.choices]))
            else:
                done = await client.chat.completions.create(model="bench-model", messages=messages,  # type: ignore[arg-type]
                                                            max_tokens=16)
                outputs.append(done.choices[0].message.content or "")

    await asyncio.gather(*(one(i) for i in range(cases)))
    await client.close()
    assert len(outputs) == cases


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), "--no-stream" not in sys.argv))
