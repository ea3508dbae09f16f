"""Executes a suite: bounded concurrency, rate limits, repeats, cache, journal, resume and shards.

The runner only orchestrates: the target (:mod:`evalkit.targets`) turns a case into a trajectory, the
scorers (:mod:`evalkit.scorers`) judge it, the journal (:mod:`evalkit.results`) keeps it.

When a run fails as a whole
    A run is ``failed`` (exit 5, ``RUN_FAILED``) when the provider refuses the key (``auth``) before any
    call has succeeded — the run stops at once — or when the first :data:`FAIL_FAST_CALLS` calls all
    failed after their retries (connection refused, HTTP 5xx on every call …) — the run stops there — or
    when every call of a finished run failed. A failed run is never ``complete``, so it cannot become a
    baseline; what it did finish is in its journal, and ``--resume`` retries the rest once fixed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from evalkit import conditions as conditions_module
from evalkit.conditions import Session, session_from_calls
from evalkit.core.score import ScoreContext
from evalkit.errors import ConfigError, ExitCode, ResultsError, RunInterrupted
from evalkit.results import (
    CaseResult,
    Journal,
    Run,
    RunLock,
    SuiteIdentity,
    all_calls,
    in_suite_order,
    load_run,
    shard_of,
    write_manifest,
)
from evalkit.scorers import score
from evalkit.suite import Suite, load_suite
from evalkit.targets import Caller, Planned, TargetRunner, open_target, plan_cases

DEFAULT_OUT = Path(".evalkit") / "runs"
FAIL_FAST_CALLS = 10
"""A run stops as failed when this many calls (or every call, if fewer) failed before any succeeded."""


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
    """Seeds every draw of the run (retry jitter, injected faults) per case, repeat and call: replays match."""
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["out"] = str(self.out)
        data["shard"] = list(self.shard) if self.shard else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunOptions:
        """Options stored in a manifest; keys this version does not know are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["out"] = Path(values.get("out") or DEFAULT_OUT)
        values["shard"] = tuple(values["shard"]) if values.get("shard") else None
        return cls(**values)


class Progress(Protocol):
    """Receives progress; the CLI renders it as a rich progress bar."""

    def start(self, total: int, done: int) -> None: ...

    def advance(self, result: CaseResult) -> None: ...


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


def _identity(suite: Suite) -> SuiteIdentity:
    target = suite.target
    described: dict[str, Any] = {"provider": target.provider or ("callable" if target.callable else "local"),
                                 "model": target.model, "params": dict(target.params)}
    if target.callable:
        described["callable"] = target.callable
    return SuiteIdentity(suite.name, suite.path, suite.sha256, tuple(c.id for c in suite.cases), described,
                         suite.gate, str(Path(suite.path).resolve()))


def _new_run_id(suite: Suite, shard: tuple[int, int] | None) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    suffix = f"-shard{shard[0]}of{shard[1]}" if shard else ""
    return f"{suite.name}-{stamp}-{secrets.token_hex(2)}{suffix}"


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


class _FailFast:
    """Watches call outcomes and decides when a run has failed as a whole (see the module docstring)."""

    def __init__(self, expected: int) -> None:
        self.threshold = max(1, min(FAIL_FAST_CALLS, expected))
        self.succeeded = 0
        self.failed = 0
        self.reason: str | None = None

    def observe(self, result: CaseResult) -> None:
        for call in result.calls:
            if call.ok:
                self.succeeded += 1
                continue
            self.failed += 1
            if self.succeeded or self.reason:
                continue
            if call.error_class == "auth":
                self.reason = f"the provider refused the credentials ({call.error}); the run stopped at once"
            elif self.failed >= self.threshold:
                self.reason = (f"the first {self.failed} calls all failed after retries (last: {call.error}); "
                               "the run stopped there")

    def final_reason(self) -> str | None:
        if self.reason:
            return self.reason
        if self.failed and not self.succeeded:
            return f"every call failed ({self.failed} of {self.failed})"
        return None


async def _execute(suite: Suite, run: Run, work: Sequence[tuple[Planned, int]], options: RunOptions,
                   progress: Progress | None, previous: Sequence[CaseResult], rendered: str,
                   target: TargetRunner, stack: contextlib.AsyncExitStack,
                   turn: Callable[[str, int], Awaitable[None]] | None = None,
                   extras: Mapping[str, Any] | None = None) -> Run:
    """Runs the work items, journalling each result; returns the run with conditions completed.

    ``turn(case_id, repeat)``, when given, is awaited before each item starts (an interleaved A/B run uses it
    to start the two arms' items in one global order).
    """
    from evalkit.cache import ResponseCache

    directory = run.directory
    assert directory is not None
    limiter = RateLimiter(options.requests_per_minute or suite.rate_limit.requests_per_minute,
                          options.tokens_per_minute or suite.rate_limit.tokens_per_minute)
    concurrency = options.concurrency or suite.concurrency
    in_flight = conditions_module.InFlight()
    caller = Caller(target.provider, suite.target.provider_spec.retry_policy, seed=options.seed, limiter=limiter,
                    in_flight=in_flight, cache=ResponseCache() if options.cache else None)
    session = max([s.index for s in run.sessions] + [r.session for r in previous], default=-1) + 1
    if run.conditions is None:
        run = replace(run, conditions=conditions_module.at_start(
            concurrency=concurrency, provider=target.provider.name, endpoint=target.provider.endpoint,
            model=target.model, suite_sha256=suite.sha256,
            template_sha256={t.origin: t.sha256 for t in suite.target.templates},
            rendered_prompts_sha256=rendered, suite_folder=Path(suite.path).resolve().parent,
            rate_limit=limiter.limits,
        ))
        directory.mkdir(parents=True)
        stack.enter_context(RunLock(directory))
    run = replace(run, status="running")
    write_manifest(run)
    journal = Journal(directory, run.run_id)
    if progress is not None:
        progress.start(run.expected, len(previous))
    queue: asyncio.Queue[tuple[Planned, int]] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    fail_fast = _FailFast(len(previous) + len(work))
    for result in previous:
        fail_fast.observe(result)
    finished: list[CaseResult] = []
    started = datetime.now(UTC)
    t0 = time.perf_counter()

    async def worker() -> None:
        while fail_fast.reason is None:
            try:
                planned, repeat = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            case = planned.case
            if turn is not None:
                await turn(case.id, repeat)
            cacheable = target.cacheable(case)
            outcome = await target.run(planned, repeat, caller if cacheable else caller.without_cache())
            failed_call = outcome.error is not None or any(not c.ok for c in outcome.trajectory.calls)
            context = ScoreContext(case=case, output=outcome.output, trajectory=outcome.trajectory, repeat=repeat,
                                   state=outcome.state, extras=extras or {})
            try:
                scores = () if failed_call else tuple([await score(check, context) for check in case.expect])
            finally:
                if outcome.release is not None:  # the state checks have read the store: the next case may reset it
                    outcome.release()
            result = CaseResult(
                case_id=case.id, repeat=repeat, passed=not failed_call and all(s.passed for s in scores),
                output=outcome.output, scores=scores, trajectory=outcome.trajectory, tags=case.tags,
                prompt_sha256=planned.prompt_sha256, route=case.route, session=session, case_error=outcome.error,
            )
            journal.append(result)
            finished.append(result)
            fail_fast.observe(result)
            if progress is not None:
                progress.advance(result)

    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    terminated: list[bool] = []

    def on_sigterm() -> None:  # CI runners send SIGTERM on cancel: save and stop as Ctrl-C does
        terminated.append(True)
        if main is not None:
            main.cancel()

    with contextlib.suppress(NotImplementedError, RuntimeError):  # no signal handlers off the main thread
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    status = "interrupted"
    try:
        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(work))))))
        reason = fail_fast.final_reason()
        status = "failed" if reason else "complete"
        run = replace(run, failure=reason)
    except asyncio.CancelledError:
        if terminated:
            raise _Terminated from None
        raise
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)
        journal.close()
        everything = [*previous, *finished]
        live = sum(1 for c in all_calls(finished) if not c.cached)
        this_session = Session(session, started.isoformat(timespec="seconds"),
                               datetime.now(UTC).isoformat(timespec="seconds"), round(time.perf_counter() - t0, 3),
                               live, round(in_flight.mean(), 3), in_flight.maximum, status)
        sessions = (*_sessions_with_killed(run.sessions, previous), this_session)
        assert run.conditions is not None
        done = replace(
            run, status=status, results=in_suite_order(everything, run.suite.case_ids), sessions=sessions,
            conditions=conditions_module.at_end(run.conditions, all_calls(everything), sessions),
        )
        write_manifest(done)
    return done


class _Terminated(Exception):
    """SIGTERM arrived while running (raised out of the event loop, turned into RunInterrupted)."""


def _sessions_with_killed(sessions: Sequence[Session], results: Sequence[CaseResult]) -> tuple[Session, ...]:
    """The recorded sessions plus one rebuilt from the journal for each session killed before its end."""
    recorded = {s.index for s in sessions}
    by_session: dict[int, list[CaseResult]] = {}
    for result in results:
        if result.session not in recorded:
            by_session.setdefault(result.session, []).append(result)
    rebuilt = [session_from_calls(index, all_calls(items)) for index, items in sorted(by_session.items())]
    return tuple(sorted([*sessions, *rebuilt], key=lambda s: s.index))


def _run(suite: Suite, run: Run, work: list[tuple[Planned, int]], options: RunOptions,
         progress: Progress | None, previous: Sequence[CaseResult], rendered: str) -> Run:
    from evalkit.judges.pool import assess, judges_of, open_pool, write_trust

    judges = judges_of(suite)
    # A judge is assessed before the run (calibration, then its canary anchors re-judged): see evalkit.judges.pool.
    trust = {name: assess(name, folder) for name, folder in judges.items()}

    async def go() -> Run:
        async with contextlib.AsyncExitStack() as stack, open_target(suite) as target:
            pool = await stack.enter_async_context(open_pool(judges, options.seed)) if judges else None
            done = await _execute(suite, run, work, options, progress, previous, rendered, target, stack,
                                  extras={"judges": pool} if pool is not None else None)
            if pool is not None and done.directory is not None:
                write_trust(done.directory, pool.after_run(trust))
            return done

    try:
        return asyncio.run(go())
    except (KeyboardInterrupt, _Terminated) as exc:
        assert run.directory is not None
        saved = len(load_run(run.directory).results) if (run.directory / "manifest.json").exists() else 0
        what = "terminated" if isinstance(exc, _Terminated) else "interrupted"
        interrupted = RunInterrupted(f"{what}: {saved} of {run.expected} results are saved in {run.directory}; "
                                     f"finish with: evalkit run --resume {run.directory}")
        if isinstance(exc, _Terminated):
            interrupted.exit_code = ExitCode.TERMINATED
        raise interrupted from None


def run_suite(suite: Suite | str | os.PathLike[str], options: RunOptions = RunOptions(),
              progress: Progress | None = None) -> Run:
    """Runs a suite (or a suite file) and returns the finished :class:`Run` (``complete`` or ``failed``)."""
    if not isinstance(suite, Suite):
        suite = load_suite(suite)
    if options.shard is not None:
        index, count = options.shard
        if not 1 <= index <= count:
            raise ConfigError(f"--shard: expected i/n with 1 <= i <= n, got {index}/{count}")
    repeats = options.repeats or suite.repeats
    planned = plan_cases(suite)
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


class Turns:
    """Starts work items of several runs in one global order: each waits until every item before it started.

    An arm that stops early (its run failed as a whole) is closed, and its remaining items are skipped.
    """

    def __init__(self, order: Sequence[tuple[str, str, int]]) -> None:
        self.order = list(order)
        self._index = {item: i for i, item in enumerate(self.order)}
        self._next = 0
        self._closed: set[str] = set()
        self._changed = asyncio.Condition()

    def _skip_closed(self) -> int:
        while self._next < len(self.order) and self.order[self._next][0] in self._closed:
            self._next += 1
        return self._next

    def of(self, arm: str) -> Callable[[str, int], Awaitable[None]]:
        """The ``turn`` hook of one arm's runner."""
        async def turn(case_id: str, repeat: int) -> None:
            mine = self._index[(arm, case_id, repeat)]
            async with self._changed:
                await self._changed.wait_for(lambda: self._skip_closed() >= mine)
                self._next = mine + 1
                self._changed.notify_all()
        return turn

    async def close(self, arm: str) -> None:
        async with self._changed:
            self._closed.add(arm)
            self._changed.notify_all()


def run_interleaved(arms: Sequence[tuple[str, Suite]], order: Sequence[tuple[str, str, int]],
                    options: RunOptions, progress: Progress | None = None) -> dict[str, Run]:
    """Runs several versions of one suite in the same window, item by item in ``order`` ((arm, case, repeat)).

    Each arm is a complete run of its own (``options.out/<arm>``, journalled like any run); prompt targets
    whose provider, model and endpoint agree share one provider (one embedded model server), so the arms
    meet the same endpoint under the same load. Used by :mod:`evalkit.ab`.
    """
    from evalkit.providers import open_provider
    from evalkit.targets.prompt import PromptTarget

    prepared = []
    for arm, suite in arms:
        planned = plan_cases(suite)
        repeats = options.repeats or suite.repeats
        wanted = {(c, r) for a, c, r in order if a == arm}
        work = [(p, r) for p, r in _work(planned, repeats, None, set()) if (p.case.id, r) in wanted]
        directory = options.out / arm
        if directory.exists():
            raise ConfigError(f"{directory}: expected a new run directory, got an existing one")
        run = Run(run_id=arm, suite=_identity(suite), repeats=repeats, conditions=None, shard=None,
                  options=options.to_dict(), directory=directory)
        prepared.append((arm, suite, run, work, rendered_hash(planned)))
    turns = Turns(order)

    def shared_key(suite: Suite) -> tuple[Any, ...] | None:
        spec = suite.target.provider_spec
        kind = suite.target.kind
        return (spec.provider, spec.model, spec.base_url, spec.api_key_env) if kind == "prompt" else None

    async def go() -> dict[str, Run]:
        async with contextlib.AsyncExitStack() as stack:
            providers: dict[tuple[Any, ...], Any] = {}
            targets: list[TargetRunner] = []
            for _, suite, _, _, _ in prepared:
                key = shared_key(suite)
                if key is None:
                    targets.append(await stack.enter_async_context(open_target(suite)))
                    continue
                if key not in providers:
                    providers[key] = await stack.enter_async_context(
                        open_provider(suite.target.provider_spec, suite.path))
                targets.append(PromptTarget(suite, providers[key]))

            async def arm_run(index: int) -> Run:
                arm, suite, run, work, rendered = prepared[index]
                try:
                    return await _execute(suite, run, work, options, progress, (), rendered, targets[index], stack,
                                          turn=turns.of(arm))
                finally:
                    await turns.close(arm)

            done = await asyncio.gather(*(arm_run(i) for i in range(len(prepared))))
            return {arm: run for (arm, *_), run in zip(prepared, done, strict=True)}

    try:
        return asyncio.run(go())
    except (KeyboardInterrupt, _Terminated):
        raise RunInterrupted(f"interrupted: the arms' finished results are saved under {options.out}") from None


def _suite_file(previous: Run) -> Path:
    """Where the run's suite is now: its absolute path when recorded, else its path from here."""
    for candidate in (previous.suite.file, previous.suite.path):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise ResultsError(f"{previous.directory}: suite.path: expected the suite file {previous.suite.path!r} "
                       f"(recorded as {previous.suite.file or 'a path relative to where the run started'}), "
                       "got no such file")


def resume_run(location: str | os.PathLike[str], progress: Progress | None = None) -> Run:
    """Finishes an interrupted run: only the (case, repeat) pairs not yet journalled are run.

    Holds the run directory's lock throughout, so two resumes of one run cannot both make calls. A run
    with nothing left to do (killed after its last result) gets its conditions and status written.
    """
    path = Path(location)
    directory = path.parent if path.name == "manifest.json" else path
    load_run(directory)  # a clear error for a path that is not a run directory, before any lock file appears
    with RunLock(directory):
        previous = load_run(directory)
        suite = load_suite(_suite_file(previous))
        if suite.sha256 != previous.suite.sha256:
            raise ResultsError(
                f"{previous.directory}: suite.sha256: {suite.path} changed since the run started (expected "
                f"{previous.suite.sha256[:12]}, got {suite.sha256[:12]}); start a new run instead"
            )
        options = RunOptions.from_dict(previous.options)
        planned = plan_cases(suite)
        work = _work(planned, previous.repeats, previous.shard, {r.key for r in previous.results})
        if not work:
            return _finalize(previous)
        rendered = previous.conditions.rendered_prompts_sha256 if previous.conditions else rendered_hash(planned)
        return _run(suite, previous, work, options, progress, previous.results, rendered)


def _finalize(previous: Run) -> Run:
    """Completes a run whose every result is journalled but whose manifest was never finished."""
    if previous.status in ("complete", "failed") and not previous.missing:
        return previous
    sessions = _sessions_with_killed(previous.sessions, previous.results)
    fail_fast = _FailFast(len(previous.results))
    for result in previous.results:
        fail_fast.observe(result)
    reason = fail_fast.final_reason()
    conditions = previous.conditions
    if conditions is not None:
        conditions = conditions_module.at_end(conditions, all_calls(previous.results), sessions)
    done = replace(previous, status="failed" if reason else "complete", failure=reason, sessions=sessions,
                   conditions=conditions)
    write_manifest(done)
    return done
