"""Executes a suite: bounded concurrency, rate limits, repeats, cache, journal, resume and shards."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import secrets
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from evalkit import conditions as conditions_module
from evalkit.cache import ResponseCache, cache_key
from evalkit.errors import ConfigError, ResultsError, RunInterrupted
from evalkit.providers import (
    CallableProvider,
    Provider,
    Request,
    RetryPolicy,
    call,
    estimate_tokens,
    open_provider,
)
from evalkit.results import (
    JOURNAL,
    CaseResult,
    Journal,
    Run,
    SuiteIdentity,
    in_suite_order,
    load_run,
    read_journal,
    shard_of,
    write_manifest,
)
from evalkit.scorers import run_check
from evalkit.suite import Case, Suite, Target, load_suite

DEFAULT_OUT = Path(".evalkit") / "runs"


@dataclass(frozen=True)
class RunOptions:
    """How to run a suite; None means 'as the suite says'."""

    out: Path = DEFAULT_OUT
    """Folder that receives the run directory."""
    run_id: str | None = None
    concurrency: int | None = None
    repeats: int | None = None
    shard: tuple[int, int] | None = None
    """(i, n): run only the cases whose id hashes to shard i of n (1-based)."""
    cache: bool = False
    """Reuse successful responses from earlier runs (content-addressed; repeats stay independent)."""
    seed: int = 0
    """Seeds the retry jitter, so a replay spaces its retries the same way."""
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["out"] = str(self.out)
        data["shard"] = list(self.shard) if self.shard else None
        return data


class Progress(Protocol):
    """Receives progress; the CLI renders it as a rich progress bar."""

    def start(self, total: int, done: int) -> None: ...

    def advance(self, result: CaseResult) -> None: ...


@dataclass(frozen=True)
class Planned:
    """One case with its rendered messages."""

    case: Case
    messages: tuple[Mapping[str, str], ...]
    prompt_sha256: str


class RateLimiter:
    """Spaces calls evenly so neither requests nor (estimated) tokens per minute exceed their limits."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None) -> None:
        self._rpm = requests_per_minute
        self._tpm = tokens_per_minute
        self._next_request = 0.0
        self._next_tokens = 0.0

    async def acquire(self, tokens: int) -> None:
        """Waits for this call's slot; slots are claimed before the await, so callers never overlap."""
        if self._rpm is None and self._tpm is None:
            return
        now = time.monotonic()
        start = now
        if self._rpm is not None:
            start = max(start, self._next_request)
            self._next_request = start + 60.0 / self._rpm
        if self._tpm is not None:
            start = max(start, self._next_tokens)
            self._next_tokens = start + 60.0 * tokens / self._tpm
        if start > now:
            await asyncio.sleep(start - now)

    @property
    def limits(self) -> dict[str, float | None]:
        return {"requests_per_minute": self._rpm, "tokens_per_minute": self._tpm}


def default_model(target: Target, where: str) -> str:
    """The model a target requests; the local provider defaults to the embedded model."""
    if target.callable:
        return target.callable
    if target.model:
        return target.model
    if (target.provider or "local") == "local":
        from evalkit.providers.local import MODEL_NAME

        return MODEL_NAME
    raise ConfigError(f"{where}: target.model: expected a model id for provider {target.provider}, got none")


def plan(suite: Suite) -> list[Planned]:
    """Renders every case's messages up front, so a template error stops the run before any call."""
    planned = []
    for case in suite.cases:
        messages: list[dict[str, str]] = []
        context = f"{case.source}: case {case.id!r}"
        if suite.target.system is not None:
            messages.append({"role": "system", "content": suite.target.system.render(case.vars, context=context)})
        if suite.target.user is not None:
            messages.append({"role": "user", "content": suite.target.user.render(case.vars, context=context)})
        if suite.target.callable:
            digest = json.dumps(dict(case.vars), sort_keys=True, default=str)
        else:
            digest = json.dumps(messages, sort_keys=True, ensure_ascii=False)
        planned.append(Planned(case, tuple(messages), hashlib.sha256(digest.encode()).hexdigest()))
    return planned


def _identity(suite: Suite) -> SuiteIdentity:
    target = suite.target
    described: dict[str, Any] = {"provider": target.provider or ("callable" if target.callable else "local"),
                                 "model": target.model, "params": dict(target.params)}
    if target.callable:
        described["callable"] = target.callable
    return SuiteIdentity(suite.name, suite.path, suite.sha256, tuple(c.id for c in suite.cases), described,
                         suite.gate)


def _new_run_id(suite: Suite, shard: tuple[int, int] | None) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    suffix = f"-shard{shard[0]}of{shard[1]}" if shard else ""
    return f"{suite.name}-{stamp}-{secrets.token_hex(2)}{suffix}"


async def _execute(suite: Suite, run: Run, work: Sequence[tuple[Planned, int]], options: RunOptions,
                   progress: Progress | None, previous: Sequence[CaseResult], rendered: str) -> Run:
    """Runs the work items, journalling each result; returns the run with conditions completed."""
    directory = run.directory
    assert directory is not None
    target = suite.target
    model = default_model(target, suite.path)
    policy = RetryPolicy(max_attempts=target.max_attempts, timeout_s=target.timeout)
    rng = random.Random(options.seed)
    limiter = RateLimiter(options.requests_per_minute or suite.rate_limit.requests_per_minute,
                          options.tokens_per_minute or suite.rate_limit.tokens_per_minute)
    cache = ResponseCache() if options.cache else None
    concurrency = options.concurrency or suite.concurrency
    in_flight = conditions_module.InFlight()
    finished: list[CaseResult] = []
    queue: asyncio.Queue[tuple[Planned, int]] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)

    async with _open_target(target, suite.path) as provider:
        if run.conditions is None:
            run = replace(run, conditions=_start_conditions(suite, provider, model, concurrency, limiter, rendered))
            directory.mkdir(parents=True)
        run = replace(run, status="running")
        write_manifest(run)
        journal = Journal(directory, run.run_id)
        if progress is not None:
            progress.start(run.expected, len(previous))
        t0 = time.perf_counter()

        async def worker() -> None:
            while True:
                try:
                    planned, repeat = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                case = planned.case
                request = Request(planned.messages, model, target.params, case.vars)
                key = None
                record = None
                if cache is not None:
                    key = cache_key(provider=provider.name, endpoint=provider.endpoint, model=model,
                                    params=target.params, messages=planned.messages or dict(case.vars),
                                    repeat=repeat)
                    record = cache.get(key)
                if record is None:
                    estimate = sum(estimate_tokens(m["content"]) for m in planned.messages)
                    await limiter.acquire(estimate + int(target.params.get("max_tokens", 0) or 0))
                    in_flight.enter()
                    concurrent = in_flight.current
                    try:
                        record = await call(provider, request, policy, rng)
                    finally:
                        in_flight.exit()
                    record = replace(record, in_flight_at_start=concurrent)
                    if cache is not None and key is not None:
                        cache.put(key, record)
                scores = tuple(run_check(c, record.output, case) for c in case.expect) if record.ok else ()
                result = CaseResult(
                    case_id=case.id, repeat=repeat, passed=record.ok and all(s.passed for s in scores),
                    output=record.output, scores=scores, call=record, tags=case.tags,
                    prompt_sha256=planned.prompt_sha256, route=case.route,
                )
                journal.append(result)
                finished.append(result)
                if progress is not None:
                    progress.advance(result)

        status = "interrupted"
        try:
            await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(work))))))
            status = "complete"
        finally:
            journal.close()
            everything = [*previous, *finished]
            assert run.conditions is not None
            done = replace(
                run, status=status, results=in_suite_order(everything, run.suite.case_ids),
                conditions=conditions_module.at_end(
                    run.conditions, [r.call for r in everything], duration_s=time.perf_counter() - t0,
                    in_flight_mean=in_flight.mean(), in_flight_max=in_flight.maximum,
                ),
            )
            write_manifest(done)
    return done


@contextlib.asynccontextmanager
async def _open_target(target: Target, where: str) -> AsyncIterator[Provider]:
    """The callable target runs in-process; any other target calls its provider."""
    if target.callable:
        from evalkit.scorers import load_callable

        try:
            fn = load_callable(target.callable)
        except ValueError as exc:
            raise ConfigError(f"{where}: target.callable: {exc}") from None
        yield CallableProvider(target.callable, fn)
        return
    async with open_provider(target.provider_spec, where) as provider:
        yield provider


def _start_conditions(suite: Suite, provider: Provider, model: str, concurrency: int,
                      limiter: RateLimiter, rendered_sha256: str) -> conditions_module.Conditions:
    return conditions_module.at_start(
        concurrency=concurrency, provider=provider.name, endpoint=provider.endpoint, model=model,
        suite_sha256=suite.sha256, template_sha256={t.origin: t.sha256 for t in suite.target.templates},
        rendered_prompts_sha256=rendered_sha256, suite_folder=Path(suite.path).resolve().parent,
        rate_limit=limiter.limits,
    )


def rendered_hash(planned: Sequence[Planned]) -> str:
    """One hash over every rendered prompt of the suite, in case order."""
    return hashlib.sha256("".join(p.prompt_sha256 for p in planned).encode()).hexdigest()


def _work(planned_cases: Sequence[Planned], repeats: int, shard: tuple[int, int] | None,
          done: set[tuple[str, int]]) -> list[tuple[Planned, int]]:
    items: list[tuple[Planned, int]] = []
    for planned in planned_cases:
        if shard is not None and shard_of(planned.case.id, shard[1]) != shard[0]:
            continue
        # Repeat-major order: every case gets its first sample before any case gets its second.
        items.extend((planned, r) for r in range(repeats) if (planned.case.id, r) not in done)
    items.sort(key=lambda item: item[1])
    return items


def _run(suite: Suite, run: Run, work: list[tuple[Planned, int]], options: RunOptions,
         progress: Progress | None, previous: Sequence[CaseResult], rendered: str = "") -> Run:
    try:
        return asyncio.run(_execute(suite, run, work, options, progress, previous, rendered))
    except KeyboardInterrupt:
        assert run.directory is not None
        journal = run.directory / JOURNAL
        saved = len(read_journal(journal)) if journal.exists() else 0
        raise RunInterrupted(
            f"interrupted: {saved} of {run.expected} results are saved in {run.directory}; "
            f"finish with: evalkit run --resume {run.directory}"
        ) from None


def run_suite(suite: Suite | str | os.PathLike[str], options: RunOptions = RunOptions(),
              progress: Progress | None = None) -> Run:
    """Runs a suite (or a suite file) and returns the completed :class:`Run`."""
    if not isinstance(suite, Suite):
        suite = load_suite(suite)
    if options.shard is not None:
        index, count = options.shard
        if not 1 <= index <= count:
            raise ConfigError(f"--shard: expected i/n with 1 <= i <= n, got {index}/{count}")
    repeats = options.repeats or suite.repeats
    planned = plan(suite)
    work = _work(planned, repeats, options.shard, set())
    if not work:
        raise ConfigError(f"{suite.path}: no case falls in shard {options.shard[0]}/{options.shard[1]}"
                          if options.shard else f"{suite.path}: the suite has no cases")
    run_id = options.run_id or _new_run_id(suite, options.shard)
    directory = options.out / run_id
    if directory.exists():
        raise ConfigError(f"{directory}: expected a new run directory, got an existing one "
                          "(use --resume to finish it)")
    # The directory is made once the provider is up, so a missing key or model leaves nothing behind.
    run = Run(run_id=run_id, suite=_identity(suite), repeats=repeats, conditions=None,
              shard=options.shard, options=options.to_dict(), directory=directory)
    return _run(suite, run, work, options, progress, (), rendered_hash(planned))


def resume_run(location: str | os.PathLike[str], progress: Progress | None = None) -> Run:
    """Finishes an interrupted run: only the (case, repeat) pairs not yet journalled are run."""
    previous = load_run(location)
    assert previous.directory is not None
    suite = load_suite(previous.suite.path)
    if suite.sha256 != previous.suite.sha256:
        raise ResultsError(
            f"{previous.directory}: suite.sha256: {suite.path} changed since the run started (expected "
            f"{previous.suite.sha256[:12]}, got {suite.sha256[:12]}); start a new run instead"
        )
    raw = dict(previous.options)
    options = RunOptions(**{**raw, "out": Path(raw.get("out", DEFAULT_OUT)),
                            "shard": tuple(raw["shard"]) if raw.get("shard") else None})
    done = {r.key for r in previous.results}
    work = _work(plan(suite), previous.repeats, previous.shard, done)
    if not work:
        return previous if previous.status == "complete" else replace(previous, status="complete")
    run = replace(previous, options={**previous.options,
                                                       "resumed": int(previous.options.get("resumed", 0)) + 1})
    return _run(suite, run, work, options, progress, previous.results)
