"""Judge views: a calibration (confusion matrix, verdict, the anchors it gets wrong) and a drift check,
in the terminal (rich) and as Markdown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from evalkit.judges.calibrate import Calibration
    from evalkit.judges.drift import DriftCheck

STATUS_STYLE = {"eligible": "bold green", "use_with_care": "bold yellow", "ineligible": "bold red",
                "stable": "bold green", "changed": "bold red", "drifted": "bold red", "inconclusive": "bold yellow"}
ICONS = {"eligible": "🟢", "use_with_care": "🟡", "ineligible": "🔴", "stable": "🟢", "changed": "🔴",
         "drifted": "🔴", "inconclusive": "🟡"}
OUTCOME = {"pass": "ok", "care": "care", "fail": "FAIL"}


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _ci(d: Mapping[str, Any], pct: bool = False) -> str:
    f = _pct if pct else _num
    return f"{f(d.get('estimate'))} [{f(d.get('low'))}, {f(d.get('high'))}]"


def _short(text: str, limit: int = 110) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def wrong_anchors(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Scored anchors whose first-pass verdict differs from the human label."""
    return [r for r in record["anchor_verdicts"] if r["verdicts"] and r["verdicts"][0] is not None
            and r["verdicts"][0] != r["human"]]


def metric_rows(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, value) rows shared by both renderers."""
    m = record["metrics"]
    usage = record["usage"]
    ceiling = record.get("human_ceiling") or {}
    rows = [
        ("anchors judged", f"{m['n_scored']} scored of {m['n_evaluated']} ({m['evaluated_on']})"),
        ("raw agreement", _ci(m["raw_agreement"], pct=True)),
        (m["kappa_kind"], _ci(m["kappa"])),
        (f"Krippendorff's alpha ({m['alpha_level']})", _ci(m["alpha"])),
        (m["tpr"]["name"], f"{_ci(m['tpr'], pct=True)} ({m['tpr']['count']}/{m['tpr']['n']}, Wilson)"),
        (m["tnr"]["name"], f"{_ci(m['tnr'], pct=True)} ({m['tnr']['count']}/{m['tnr']['n']}, Wilson)"),
        ("signed bias", f"{_ci(m['bias'])} {m['bias']['unit']}: {m['bias']['direction']}"),
        ("flip rate (noise floor)", f"{_ci(m['flip_rate'], pct=True)} ({m['flip_rate']['count']}/"
                                    f"{m['flip_rate']['n']} across {record['settings']['passes']} passes)"),
        ("unscored", f"{_pct(m['unscored']['estimate'])} ({m['unscored']['count']}/{m['unscored']['n']})"
                     + (": " + ", ".join(f"{k} ×{v}" for k, v in m["unscored"]["reasons"].items())
                        if m["unscored"]["reasons"] else "")),
    ]
    if ceiling.get("n"):
        kappa = ceiling.get("kappa")
        rows.append(("human ceiling", f"{ceiling['n']} double-coded; alpha {_num(ceiling.get('alpha'))}"
                     + (f"; kappa {_ci(kappa)}" if kappa else "")))
    else:
        rows.append(("human ceiling", ceiling.get("note", "n/a")))
    for probe in record.get("probes", {}).values():
        rows.append(("probe", probe["summary"]))
    tokens = usage.get("prompt_tokens")
    shown = (f"{tokens:,} prompt + {usage['completion_tokens']:,} completion" if tokens is not None else
             f"≈{usage['prompt_tokens_est']:,} prompt + ≈{usage['completion_tokens_est']:,} completion (estimated)")
    cost = usage.get("cost_usd")
    rows.append(("judge tokens", f"{shown} in {usage['calls']} calls, {usage['duration_s']:.0f} s; cost "
                 + (f"${cost:.4f} ({usage['cost_basis']})" if cost is not None else usage["cost_basis"])))
    return rows


def _identity_line(identity: Mapping[str, Any]) -> str:
    models = ", ".join(identity.get("models_returned") or []) or "none reported"
    prints = ", ".join(identity.get("system_fingerprints") or []) or "none reported"
    tokenizer = identity.get("tokenizer_sha256")
    return (f"{identity['provider']} · {identity['model_requested']} (returned: {models}; fingerprint: {prints}"
            + (f"; tokenizer {tokenizer[:12]}" if tokenizer else "") + f") · endpoint {identity.get('endpoint_host')}"
            + f" · prompt {identity['prompt_sha256'][:12]} · params {identity['params_sha256'][:12]}")


def render_calibration(calibration: Calibration, console: Console, *, wrong: int = 15) -> None:
    """Verdict, identity, confusion matrix, statistics, criteria and the anchors the judge gets wrong."""
    from rich.table import Table

    r = calibration.record
    console.print(f"[{STATUS_STYLE[r['status']]}]judge {r['judge']}: {r['status']}[/] "
                  f"(anchors {r['anchors']['sha256'][:12]}, {r['anchors']['n']} items)")
    console.print(f"  {_identity_line(r['identity'])}", highlight=False)
    labels = r["metrics"]["confusion"]["labels"]
    matrix = r["metrics"]["confusion"]["matrix"]
    table = Table(title="confusion (rows: human, columns: judge)", title_justify="left")
    table.add_column("human \\ judge")
    for label in labels:
        table.add_column(str(label), justify="right")
    table.add_column("total", justify="right")
    for label, row in zip(labels, matrix, strict=True):
        table.add_row(str(label), *(str(x) for x in row), str(sum(row)))
    console.print(table)
    stats = Table(show_header=False, box=None, pad_edge=False)
    stats.add_column(style="bold")
    stats.add_column()
    for name, value in metric_rows(r):
        stats.add_row(name, value)
    console.print(stats)
    for c in r["criteria"]:
        style = {"pass": "green", "care": "yellow", "fail": "red"}[c["outcome"]]
        console.print(f"  [{style}]{OUTCOME[c['outcome']]:>4}[/] {c['text']}", highlight=False)
    _render_wrong(r, console, wrong)


def _render_wrong(record: Mapping[str, Any], console: Console, limit: int) -> None:
    from rich.table import Table

    missed = wrong_anchors(record)
    if not missed:
        return
    table = Table(title=f"anchors the judge gets wrong ({len(missed)})", title_justify="left")
    for column in ("anchor", "split", "human", "judge", "judge's reasoning"):
        table.add_column(column)
    for row in missed[:limit]:
        table.add_row(row["id"], row["split"], str(row["human"]), str(row["verdicts"][0]), _short(row["reasoning"]))
    console.print(table)
    if len(missed) > limit:
        console.print(f"  …and {len(missed) - limit} more in calibration.json (anchor_verdicts)")


def _escape(text: str, limit: int = 200) -> str:
    return _short(text, limit).replace("|", "\\|").replace("<", "&lt;")


def calibration_markdown(calibration: Calibration, *, wrong: int = 20) -> str:
    """The calibration as Markdown."""
    r = calibration.record
    labels = r["metrics"]["confusion"]["labels"]
    matrix = r["metrics"]["confusion"]["matrix"]
    lines = [f"## evalkit judge `{r['judge']}` — {ICONS[r['status']]} **{r['status']}**", "",
             f"`{_identity_line(r['identity'])}`", "", "### Confusion (rows: human, columns: judge)", "",
             "| human \\ judge | " + " | ".join(f"`{x}`" for x in labels) + " | total |",
             "|---|" + "---:|" * (len(labels) + 1)]
    lines += [f"| `{label}` | " + " | ".join(str(x) for x in row) + f" | {sum(row)} |"
              for label, row in zip(labels, matrix, strict=True)]
    lines += ["", "### Statistics", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {_escape(value, 400)} |" for name, value in metric_rows(r)]
    lines += ["", "### Criteria", ""]
    lines += [f"- {OUTCOME[c['outcome']]}: {c['text']}" for c in r["criteria"]]
    missed = wrong_anchors(r)
    if missed:
        lines += ["", f"### Anchors the judge gets wrong ({len(missed)})", "",
                  "| anchor | split | human | judge | judge's reasoning |", "|---|---|---|---|---|"]
        lines += [f"| `{x['id']}` | {x['split']} | `{x['human']}` | `{x['verdicts'][0]}` | {_escape(x['reasoning'])} |"
                  for x in missed[:wrong]]
        if len(missed) > wrong:
            lines.append(f"\n…and {len(missed) - wrong} more in calibration.json.")
    return "\n".join(lines) + "\n"


def _check_rows(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    s = record.get("statistics")
    rows: list[tuple[str, str]] = [("calibration", f"{record['calibration']} ({record['calibration_status']})")]
    if s is None:
        rows.append(("anchors", "not re-judged: the identity already differs (use --full to measure drift too)"))
        return rows
    rows += [
        ("anchors re-judged", f"{s['n']} scored" + (f"; {record['anchors_skipped_changed']} skipped (edited since "
                                                    "calibration)" if record["anchors_skipped_changed"] else "")),
        ("flips vs calibration", f"{_ci(s['flips'], pct=True)} ({s['flips']['count']}/{s['flips']['n']})"),
        ("noise floor", f"{_ci(s['noise_floor'], pct=True)} ({s['noise_floor']['count']}/{s['noise_floor']['n']} "
                        "flipped between calibration passes)"),
        ("exact test", f"p = {s['test']['pvalue']:.3g} (statistic {s['test']['statistic']}, null mean "
                       f"{s['test']['null_mean']:.1f}, one-sided, alpha {s['test']['alpha']:g})"),
        ("direction", f"{s['direction']['direction']} ({s['direction']['to_pass']} to pass, "
                      f"{s['direction']['to_fail']} to fail; McNemar p = {s['direction']['pvalue']:.3g})"),
    ]
    if "shift" in s:
        sh = s["shift"]
        rows.append(("ordinal shift", f"{sh['mean']:+.3f} [{sh['low']:+.3f}, {sh['high']:+.3f}] "
                                      f"(Wilcoxon p = {sh['pvalue']:.3g})"))
    if "kappa_change" in s:
        kc = s["kappa_change"]
        rows.append(("kappa change", f"{_ci(kc)} ({_num(kc['calibrated'])} → {_num(kc['now'])})"))
    u = s["unscored"]
    rows.append(("unscored", f"{u['count']}/{u['n']}"))
    return rows


def render_check(result: DriftCheck, console: Console) -> None:
    """Status, reasons, identity changes and the drift statistics."""
    from rich.table import Table

    r = result.record
    console.print(f"[{STATUS_STYLE[r['status']]}]judge {r['judge']}: {r['status']}[/]")
    for reason in r["reasons"]:
        console.print(f"  - {reason}", highlight=False)
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for name, value in _check_rows(r):
        table.add_row(name, value)
    console.print(table)


def check_markdown(result: DriftCheck) -> str:
    """The check as Markdown."""
    r = result.record
    lines = [f"## evalkit judge check `{r['judge']}` — {ICONS[r['status']]} **{r['status']}**", ""]
    lines += [f"- {_escape(x, 400)}" for x in r["reasons"]]
    lines += ["", "| | |", "|---|---|", *(f"| {k} | {_escape(v, 400)} |" for k, v in _check_rows(r))]
    return "\n".join(lines) + "\n"


def flipped(result: DriftCheck, calibration_rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, Any, Any]]:
    """Anchors whose verdict now differs from their first calibration verdict: (id, then, now)."""
    now = {v["id"]: v["label"] for v in result.record["verdicts"]}
    return [(row["id"], row["verdicts"][0], now[row["id"]]) for row in calibration_rows
            if row["id"] in now and now[row["id"]] is not None and row["verdicts"][0] != now[row["id"]]]
