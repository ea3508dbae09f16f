"""A judge at work: renders the rubric for an item, calls the provider, parses the verdict.

Every judge call goes through the provider machinery the target uses (async, retries with seeded
jitter, rate limits, the optional response cache) and yields a :class:`~evalkit.providers.CallRecord`.
:meth:`Judge.identity` asks the endpoint who it is (model returned, system fingerprint and, on a
llama.cpp server, a tokenizer fingerprint) with one tiny call and no anchor.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from evalkit.judges.spec import JudgeSpec, Label
from evalkit.judges.verdict import SampleVerdict, Verdict, aggregate, parse_answer, swap, unscored_call
from evalkit.providers import CallRecord, Provider, Request, open_provider

if TYPE_CHECKING:
    from evalkit.cache import ResponseCache

PROBE_MESSAGES = ({"role": "user", "content": "Reply with the single word OK."},)
"""The identity probe: one short call whose answer is not used, only who answered."""
TOKENIZER_PROBE = ("Ünïcödé naïveté — 12,345.67 km² · 東京 · ```def f(x): return x**2``` "
                   "<|im_start|> <start_of_turn> [INST] ¿Qué? 🙂")
"""Text whose token ids differ between tokenizers (accents, CJK, code, numbers, other models' special tokens)."""
UNREADABLE = "unreadable"
"""The tokenizer fingerprint of a server that did not answer the tokenize request in time."""


@dataclass(frozen=True)
class JudgeItem:
    """What is judged: the case vars, the output(s) and an optional reference."""

    id: str
    vars: Mapping[str, Any] = field(hash=False)
    output: str | None = None
    output_a: str | None = None
    output_b: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class Identity:
    """Who answered, as the endpoint reports it (from one probe call, no anchor)."""

    provider: str
    model_requested: str
    endpoint: str | None
    """Host and port (never a key); for the embedded model, ``local``: its port changes every run."""
    model_returned: str | None
    system_fingerprint: str | None
    tokenizer_sha256: str | None
    """SHA-256 of the token ids a llama.cpp server gives :data:`TOKENIZER_PROBE` (None where unavailable)."""
    local_model_sha256: str | None
    """SHA-256 of the GGUF file the embedded provider serves."""
    endpoint_host: str | None = None
    """The endpoint actually called this time (for the embedded model, with its port)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def render_messages(spec: JudgeSpec, item: JudgeItem, *, order: str = "ab",
                    padding: str | None = None) -> tuple[dict[str, str], ...]:
    """The messages for one item (pairwise ``ba`` swaps the two outputs; padding is appended to the output)."""
    output = item.output
    if padding and output is not None:
        output = f"{output}\n\n{padding}"
    first, second = (item.output_a, item.output_b) if order == "ab" else (item.output_b, item.output_a)
    values: dict[str, Any] = {**item.vars, "vars": dict(item.vars), "labels": list(spec.verdict.labels)}
    if spec.verdict.pairwise:
        values.update(output_a=first, output_b=second)
    else:
        values["output"] = output
    if item.reference is not None:
        values["reference"] = item.reference
    context = f"{spec.path}: item {item.id!r}"
    messages = []
    if spec.system is not None:
        messages.append({"role": "system", "content": spec.system.render(values, context=context)})
    messages.append({"role": "user", "content": spec.rubric.render(values, context=context)})
    return tuple(messages)


class Judge:
    """A judge bound to an open provider. Use :func:`open_judge`.

    Its calls go through :class:`~evalkit.targets.base.Caller`, the path every model call of a run takes
    (cache, rate limits, in-flight count, retries with jitter drawn from the item, pass and call number).
    """

    def __init__(self, spec: JudgeSpec, provider: Provider, *, seed: int = 0, cache: ResponseCache | None = None,
                 limiter: Any = None) -> None:
        from evalkit.conditions import InFlight
        from evalkit.targets.base import Caller

        self.spec = spec
        self.provider = provider
        self.seed = seed
        self._gate = asyncio.Semaphore(spec.concurrency)
        self.in_flight = InFlight()
        self._caller = Caller(provider, spec.provider.retry_policy, seed=seed, limiter=limiter or _NoLimit(),
                              in_flight=self.in_flight, cache=cache)

    def _params(self, sample: int) -> dict[str, Any]:
        params = dict(self.spec.params)
        if isinstance(params.get("seed"), int):
            params["seed"] = params["seed"] + sample  # samples differ; passes repeat the same request
        return params

    async def _call(self, request: Request, item_id: str, pass_index: int, index: int) -> CallRecord:
        # A pass is the repeat, so the cache keeps passes apart: a cached pass 2 would fake a zero flip rate.
        async with self._gate:
            return await self._caller(request, case_id=item_id, repeat=pass_index, index=index)

    async def _sample(self, item: JudgeItem, sample: int, order: str, pass_index: int,
                      padding: str | None) -> SampleVerdict:
        messages = render_messages(self.spec, item, order=order, padding=padding)
        request = Request(messages, self.spec.model, self._params(sample), response_format=self.spec.response_format)
        # The call's number within (item, pass): sample, order and padding each get their own.
        index = sample * 4 + (2 if padding else 0) + (1 if order == "ba" else 0)
        record = await self._call(request, item.id, pass_index, index)
        if not record.ok:
            return SampleVerdict(None, "", unscored_call(record), record, sample, order)
        parsed = parse_answer(record.output, record.stop_reason, self.spec.verdict)
        label: Label | None = swap(parsed.label) if order == "ba" else parsed.label
        return SampleVerdict(label, parsed.reasoning, parsed.unscored, record, sample, order)

    async def verdict(self, item: JudgeItem, *, pass_index: int = 0, padding: str | None = None) -> Verdict:
        """The judge's verdict on one item: ``samples`` calls (pairwise: each in both orders), aggregated."""
        orders = ("ab", "ba") if self.spec.verdict.pairwise else ("",)
        jobs = [self._sample(item, sample, order, pass_index, padding)
                for sample in range(self.spec.samples) for order in orders]
        samples = await asyncio.gather(*jobs)
        return aggregate(item.id, samples, self.spec.verdict, self.spec.aggregate)

    async def identity(self) -> tuple[Identity, Any]:
        """Who answers (one tiny call, no anchor): the returned model, fingerprint and tokenizer fingerprint."""
        request = Request(PROBE_MESSAGES, self.spec.model, {"max_tokens": 1, "temperature": 0})
        record = await self._call(request, "(identity probe)", 0, 0)
        endpoint = self.provider.endpoint
        # The embedded model is started on a new port each run: its identity is the model file, not the port.
        embedded = self.spec.provider.provider == "local" and not self.spec.provider.base_url
        local_sha = await asyncio.to_thread(_local_model_sha256) if embedded else None
        tokenizer = await asyncio.to_thread(tokenizer_fingerprint, self.spec, endpoint)
        identity = Identity(
            provider=self.spec.provider.provider, model_requested=self.spec.model,
            endpoint="local" if embedded else endpoint,
            model_returned=record.model_returned, system_fingerprint=record.system_fingerprint,
            tokenizer_sha256=tokenizer, local_model_sha256=local_sha, endpoint_host=endpoint,
        )
        return identity, record


def _local_model_sha256() -> str:
    from evalkit.providers.local import find_model

    digest = hashlib.sha256()
    with find_model().open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tokenizer_fingerprint(spec: JudgeSpec, endpoint: str | None) -> str | None:
    """SHA-256 of the token ids the server gives :data:`TOKENIZER_PROBE`, from llama.cpp's ``/extras/tokenize``.

    Only asked of the embedded server and of ``base_url`` endpoints (never a vendor's default), without a key.
    Any other answer (404, an error, another shape) means the endpoint offers no such fingerprint: None.
    No answer in time, twice, is :data:`UNREADABLE` (a busy server is not a different server).
    """
    if spec.provider.provider == "local":
        if endpoint is None:
            return None
        origin = f"http://{endpoint}"
    elif spec.provider.base_url and spec.provider.provider != "anthropic":
        parts = urlsplit(spec.provider.base_url)
        path = parts.path.rstrip("/")
        origin = f"{parts.scheme}://{parts.netloc}{path.removesuffix('/v1')}"
    else:
        return None
    body = json.dumps({"input": TOKENIZER_PROBE, "model": spec.model}).encode()
    request = urllib.request.Request(f"{origin}/extras/tokenize", data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
    answer: Any = None
    for _ in range(2):
        try:
            with urllib.request.urlopen(request, timeout=spec.provider.timeout) as response:
                answer = json.loads(response.read())
            break
        except urllib.error.HTTPError:
            return None  # the endpoint answered: it has no such route
        except (urllib.error.URLError, OSError):
            continue  # busy or unreachable: try once more
        except ValueError:
            return None
    else:
        return UNREADABLE
    tokens = answer.get("tokens") if isinstance(answer, dict) else None
    if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
        return None
    return hashlib.sha256(json.dumps(tokens).encode()).hexdigest()


class _NoLimit:
    async def acquire(self, tokens: int) -> None:
        return None


@contextlib.asynccontextmanager
async def open_judge(spec: JudgeSpec, *, seed: int = 0, cache: bool = False) -> AsyncIterator[Judge]:
    """Opens the judge's provider (starting the embedded model if it is ``local``) for a block of calls."""
    from evalkit.runner import RateLimiter

    limiter = RateLimiter(spec.requests_per_minute, spec.tokens_per_minute)
    response_cache = None
    if cache:
        from evalkit.cache import ResponseCache

        response_cache = ResponseCache()
    async with open_provider(spec.provider, spec.path) as provider:
        yield Judge(spec, provider, seed=seed, cache=response_cache, limiter=limiter)
