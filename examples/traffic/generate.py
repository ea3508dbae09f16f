"""Writes two weeks of example production traffic for the example suite (suites/support_reply.yaml).

Usage: python examples/traffic/generate.py [--seed 12] [--out-dir examples/traffic]

The traffic is what a support assistant behind a cheap router might see, and it is seeded, so the committed
files are exactly what this script writes:

- **Volume**: about 4,000 requests from Monday 2025-03-03 00:00 UTC for 14 days, Poisson per hour with a
  diurnal shape (a trough near 03:00 UTC at about a sixth of the peak near 15:00) and weekends at 60%.
- **Route mix**: skewed — ``general`` (greetings, small talk, "are you a bot?") takes about half; the suite's
  other routes share the rest, and ``order-status`` is a route the suite has no cases for.
- **Router drift**: from day 8 a router update sends more traffic to ``general`` (52% → 60%), taken from
  the specific routes.
- **Arms**: three reply personas (``warm``, ``concise``, ``formal``) meant as an equal split, but the model
  that picks the persona chooses ``warm`` about 90% of the time.
- **Models**: ``technical`` and ``escalation`` are served by the larger model, the rest by the small one;
  ``billing`` moves to a newer small model on day 10.
- **Errors**: about 1.5% of requests fail (timeouts, rate limits, server errors).

Two files hold the same requests:

- ``traffic.csv``: ``timestamp,route,arm,model,error``;
- ``traffic.otlp.jsonl.gz``: OTLP JSON trace exports, one ``{"resourceSpans": ...}`` batch of up to 200
  spans per line (as the OpenTelemetry collector's file exporter writes them), gzip-compressed to keep the
  repository small. Each request is one ``chat`` span with the GenAI attributes ``gen_ai.operation.name``,
  ``gen_ai.provider.name``, ``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.workflow.name``
  (the route) and ``feature_flag.variant`` (the persona arm); a failed request has status ERROR and
  ``error.type``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

START = datetime(2025, 3, 3, tzinfo=UTC)
DAYS = 14
MEAN_PER_HOUR = 12.0
ROUTES = ("general", "shipping", "returns", "billing", "account", "technical", "order-status", "escalation")
MIX_BEFORE = (0.52, 0.12, 0.10, 0.08, 0.06, 0.05, 0.04, 0.03)
MIX_AFTER = (0.60, 0.09, 0.08, 0.07, 0.05, 0.04, 0.04, 0.03)
DRIFT_DAY = 7
"""Days after the start when the router update lands (day 8 counted from 1)."""
ARMS = ("warm", "concise", "formal")
ARM_SHARES = (0.90, 0.06, 0.04)
SMALL, LARGE, NEWER = "gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "gpt-4.1-mini-2025-04-14"
REQUESTED = {SMALL: "gpt-4o-mini", LARGE: "gpt-4o", NEWER: "gpt-4.1-mini"}
"""The alias the application asks for → the dated model the provider reports serving."""
MODEL_CHANGE_DAY = 9
"""Days after the start when ``billing`` moves to the newer small model."""
ERRORS = (("timeout", 0.6), ("rate_limit", 0.3), ("server", 0.1))
ERROR_RATE = 0.015
SPANS_PER_LINE = 200


def diurnal(hour_of_day: float, weekday: int) -> float:
    """Relative request rate: a cosine day peaking at 15:00 UTC, trough a sixth of the peak; weekends 60%."""
    shape = (1 + 5 * (1 + math.cos((hour_of_day - 15) / 24 * 2 * math.pi)) / 2) / 6
    return shape * (0.6 if weekday >= 5 else 1.0)


def requests(seed: int) -> list[dict[str, str]]:
    """The example requests in time order."""
    rng = np.random.default_rng(seed)
    hours = DAYS * 24
    weights = np.array([diurnal(h % 24, (START + timedelta(hours=h)).weekday()) for h in range(hours)])
    rates = weights / weights.mean() * MEAN_PER_HOUR
    out = []
    for hour in range(hours):
        begin = START + timedelta(hours=hour)
        mix = MIX_AFTER if hour >= DRIFT_DAY * 24 else MIX_BEFORE
        seconds = np.sort(rng.uniform(0, 3600, size=rng.poisson(rates[hour])))
        for second in seconds:
            route = ROUTES[rng.choice(len(ROUTES), p=mix)]
            arm = ARMS[rng.choice(len(ARMS), p=ARM_SHARES)]
            model = LARGE if route in ("technical", "escalation") else SMALL
            if route == "billing" and hour >= MODEL_CHANGE_DAY * 24:
                model = NEWER
            error = ""
            if rng.random() < ERROR_RATE:
                error = ERRORS[rng.choice(len(ERRORS), p=[p for _, p in ERRORS])][0]
            when = begin + timedelta(seconds=float(second))
            out.append({"timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", "route": route, "arm": arm,
                        "model": model, "error": error, "latency_ms": str(int(rng.gamma(4, 300)))})
    return out


def write_csv(rows: list[dict[str, str]], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["timestamp", "route", "arm", "model", "error"])
        for row in rows:
            writer.writerow([row["timestamp"], row["route"], row["arm"], row["model"], row["error"]])


def _attribute(key: str, value: str) -> dict[str, object]:
    return {"key": key, "value": {"stringValue": value}}


def span(row: dict[str, str], index: int, seed: int) -> dict[str, object]:
    """One request as an OTLP JSON ``chat`` span."""
    start = datetime.strptime(row["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    start_ns = int(start.timestamp() * 1000) * 1_000_000
    request_model = REQUESTED[row["model"]]
    attributes = [
        _attribute("gen_ai.operation.name", "chat"),
        _attribute("gen_ai.provider.name", "openai"),
        _attribute("gen_ai.request.model", request_model),
        _attribute("gen_ai.response.model", row["model"]),
        _attribute("gen_ai.workflow.name", row["route"]),
        _attribute("feature_flag.variant", row["arm"]),
    ]
    status: dict[str, object] = {}
    if row["error"]:
        attributes.append(_attribute("error.type", row["error"]))
        status = {"code": 2, "message": row["error"]}
    ids = f"{seed:08x}{index:024x}"
    return {"traceId": ids, "spanId": ids[-16:], "name": f"chat {request_model}", "kind": 3,
            "startTimeUnixNano": str(start_ns), "endTimeUnixNano": str(start_ns + int(row["latency_ms"]) * 1_000_000),
            "attributes": attributes, "status": status}


def write_otlp(rows: list[dict[str, str]], path: Path, seed: int) -> None:
    resource = {"attributes": [_attribute("service.name", "support-assistant"),
                               _attribute("deployment.environment.name", "production")]}
    scope = {"name": "support-assistant.genai", "version": "1.0.0"}
    text = io.StringIO()
    for first in range(0, len(rows), SPANS_PER_LINE):
        spans = [span(row, first + i, seed) for i, row in enumerate(rows[first:first + SPANS_PER_LINE])]
        batch = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": scope, "spans": spans}]}]}
        text.write(json.dumps(batch, separators=(",", ":")) + "\n")
    # mtime=0 keeps the compressed bytes identical from run to run.
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as out:
        out.write(text.getvalue().encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    rows = requests(args.seed)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out_dir / "traffic.csv")
    write_otlp(rows, args.out_dir / "traffic.otlp.jsonl.gz", args.seed)
    print(f"wrote {len(rows):,} requests to {args.out_dir / 'traffic.csv'} and "
          f"{args.out_dir / 'traffic.otlp.jsonl.gz'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
