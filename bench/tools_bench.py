"""The cost of evalkit's live-tools machinery, side by side with calling the service directly.

1. The tool proxy (what a user's own agent calls): added latency per call, p50/p99 on loopback, for the
   same GET to the example orders service, direct vs through the proxy (no fault profile).
2. The runtime boundary (what evalkit's own agent loop calls): the same GET through ``CaseTools.call``.
3. Per-case reset of the state: SQLite (seed copied over the live file) and PostgreSQL (database recreated
   from its template), next to one direct service call for scale.

Usage: python bench/tools_bench.py [--calls 1000] [--resets 200] [--pg-resets 30]
PostgreSQL needs the server binaries (Debian's postgresql, as .ci/run installs) and the test suite's
throwaway-cluster module; without them that line says it was skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "orders"
sys.path.insert(0, str(REPO))

SUITE = f"""
name: bench
target: {{callable: "examples.orders.agent:answer"}}
services:
  orders:
    command: ["{{python}}", "{EXAMPLE / 'service.py'}", "--port", "{{port}}", "--db", "{{work_dir}}/orders.db"]
state:
  sqlite: {{path: "{{work_dir}}/orders.db", seed: "{EXAMPLE / 'seed.sql'}"}}
tools:
  get_order: {{http: {{service: orders, path: "/orders/{{order_id}}"}}}}
cases: [{{id: a}}]
"""


def quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


async def timed(n: int, call: object) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await call()  # type: ignore[operator]
        out.append(time.perf_counter() - t0)
    return out


async def http_bench(calls: int, resets: int) -> None:
    import httpx

    from evalkit.suite import load_suite
    from evalkit.tools.environment import open_env

    folder = Path(__file__).resolve().parent
    path = folder / ".tools_bench_suite.yaml"
    path.write_text(SUITE, "utf-8")
    try:
        suite = load_suite(path)
    finally:
        path.unlink()
    assert suite.toolkit is not None
    async with open_env(suite.toolkit, suite.path, proxy=True) as env, \
            httpx.AsyncClient(trust_env=False) as client:
        direct_url = env.services["orders"].url + "/orders/A1001"
        tools = env.case_tools("bench", 0, 0, None, lambda event: None)
        with env.proxy.case(tools) as token:
            proxied_url = f"{env.proxy.url(token)}/orders/orders/A1001"

            async def direct() -> None:
                (await client.get(direct_url)).raise_for_status()

            async def proxied() -> None:
                (await client.get(proxied_url)).raise_for_status()

            async def boundary() -> None:
                response = await tools.call("get_order", {"order_id": "A1001"})
                assert response.ok

            for fn in (direct, proxied, boundary):  # warm up connections and caches
                await timed(20, fn)
            rounds: dict[str, list[float]] = {"direct": [], "proxy": [], "boundary": []}
            for _ in range(5):  # interleaved rounds, so load on a shared machine hits all three alike
                rounds["direct"] += await timed(calls // 5, direct)
                rounds["proxy"] += await timed(calls // 5, proxied)
                rounds["boundary"] += await timed(calls // 5, boundary)
        d50, d99 = quantiles(rounds["direct"])
        print(f"tool call, {calls} sequential GETs on loopback (p50 / p99):")
        print(f"  direct to the service      {d50 * 1e3:7.2f} / {d99 * 1e3:7.2f} ms")
        for name, label in (("proxy", "through the proxy"), ("boundary", "through the runtime boundary")):
            p50, p99 = quantiles(rounds[name])
            print(f"  {label:<26} {p50 * 1e3:7.2f} / {p99 * 1e3:7.2f} ms   added p50 {1e3 * (p50 - d50):+.2f} ms, "
                  f"p99 {1e3 * (p99 - d99):+.2f} ms (x{p50 / d50:.2f} at p50)")
        assert env.store is not None
        store = env.store
        reset_times = await timed(resets, store.reset)
        r50, r99 = quantiles(reset_times)
        print(f"per-case reset, SQLite ({resets} resets, p50 / p99): {r50 * 1e3:.2f} / {r99 * 1e3:.2f} ms "
              f"(= {r50 / d50:.2f} direct service calls)")
        return


async def postgres_bench(resets: int, direct_p50: float | None) -> None:
    try:
        from tests.postgres import find_bin_dir, running_server
    except ImportError:
        print("per-case reset, PostgreSQL: skipped (tests/postgres.py, the throwaway-cluster module, is missing)")
        return
    if find_bin_dir() is None:
        print("per-case reset, PostgreSQL: skipped (no server binaries; install Debian's postgresql)")
        return
    from evalkit.tools.spec import StateSpec
    from evalkit.tools.state import PostgresStore

    with running_server(durable=True) as server:
        spec = StateSpec(kind="postgres", url=server.url(), database="bench_orders", seed=str(EXAMPLE / "seed.sql"),
                         source="bench")
        store = PostgresStore(spec)
        await store.setup()
        try:
            times = await timed(resets, store.reset)
        finally:
            await store.close()
    p50, p99 = quantiles(times)
    print(f"per-case reset, PostgreSQL ({resets} resets, CREATE DATABASE ... TEMPLATE, p50 / p99): "
          f"{p50 * 1e3:.1f} / {p99 * 1e3:.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--resets", type=int, default=200)
    parser.add_argument("--pg-resets", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(http_bench(args.calls, args.resets))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(postgres_bench(args.pg_resets, None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
