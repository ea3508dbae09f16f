"""Acknowledgment-action gaps: what the final answer claims was done, against the trace and the store.

A *claim* is a sentence of the final answer that says a write was done ("Your order A1001 has been
cancelled."), found with the write tool's ``claims`` patterns (or defaults from its name's verb) and not
negated, hedged, or asked as a question. Each claim is joined to the trace (a successful attempt of that
tool, with a matching id when the sentence names one) **and** to the store (the tool's ``confirm`` query
with that call's arguments):

- ``match``: a successful write in the trace, and the store agrees (or the tool declares no ``confirm``);
- ``unsupported``: the store says it did not happen, or nothing in the trace or store backs it — the agent
  reported success silently (*silent success*);
- ``unverified``: the store shows the change but no attempt succeeded in the trace (the agent could not
  have known; e.g. a timeout after the side effect);
- ``unclaimed``: a successful write the answer never mentions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evalkit.core.trajectory import ToolEvent
from evalkit.tools.spec import ToolSpec

_NEGATION = re.compile(
    r"\b(not|no|never|unable|cannot|can't|couldn't|could not|wasn't|weren't|isn't|didn't|failed|fail|"
    r"unfortunately|error|problem|will|would|shall|can|may|might|please|let me|i'll|trying|try|attempt\w*|"
    r"if|once|whether|pending)\b|n't\b",
    re.IGNORECASE,
)
_IDS = re.compile(r"\b[A-Z]{1,4}-?\d{3,}\b")
_SQL_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def unbound(confirm: Mapping[str, Any], arguments: Mapping[str, Any]) -> list[str]:
    """The parameters of a ``confirm`` SQL query that ``arguments`` do not supply (none for other kinds)."""
    sql = confirm.get("sql")
    return [] if not isinstance(sql, str) else [n for n in dict.fromkeys(_SQL_PARAM.findall(sql)) if n not in arguments]
_IRREGULAR = {"send": "sent", "pay": "paid", "make": "made", "issue": "issued"}


@dataclass(frozen=True)
class Claim:
    """A sentence of the final answer claiming a write was done."""

    tool: str
    sentence: str
    ids: tuple[str, ...]


@dataclass(frozen=True)
class ClaimVerdict:
    """How one claim (or one unclaimed write) holds up against the trace and the store."""

    tool: str
    status: str
    """``match``, ``unsupported``, ``unverified`` or ``unclaimed``."""
    sentence: str
    reason: str


def patterns(tool: ToolSpec) -> list[re.Pattern[str]]:
    """The tool's claim patterns: declared, else the past tense of its name's first word."""
    if tool.claims:
        return [re.compile(p, re.IGNORECASE) for p in tool.claims]
    verb = tool.name.split("_")[0].lower()
    past = _IRREGULAR.get(verb, verb + ("d" if verb.endswith("e") else "ed"))
    return [re.compile(rf"\b{re.escape(past)}\b|\b{re.escape(verb)}\w*\s+(?:has|have)\s+been\b", re.IGNORECASE)]


def sentences(text: str) -> list[str]:
    """Sentences, cut further into clauses at commas, semicolons and 'but'/'however' (a hedge stays local)."""
    out: list[str] = []
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
        parts = re.split(r"[,;:]\s+|\s+(?:but|however|although|though)\s+", sentence.strip())
        out.extend(p.strip() for p in parts if p.strip())
    return out


def find_claims(text: str, tools: Mapping[str, ToolSpec]) -> list[Claim]:
    """Claims of completed writes in a final answer."""
    found = []
    for sentence in sentences(text):
        if sentence.endswith("?") or _NEGATION.search(sentence):
            continue
        for name, tool in tools.items():
            if tool.effect == "write" and any(p.search(sentence) for p in patterns(tool)):
                found.append(Claim(name, sentence, tuple(dict.fromkeys(_IDS.findall(sentence)))))
    return found


def _mentions(event: ToolEvent, ids: Sequence[str]) -> bool:
    if not ids:
        return True
    values = {str(v) for v in event.arguments.values()}
    return any(i in values for i in ids)


def performed(event: ToolEvent) -> bool:
    """Whether an attempt really wrote (known for faults; a success counts when nothing says otherwise)."""
    return event.side_effect is True or (event.side_effect is None and event.ok)


async def judge_claims(output: str, events: Sequence[ToolEvent], tools: Mapping[str, ToolSpec],
                       live: Any) -> list[ClaimVerdict]:
    """Every claim of the answer, and every unclaimed successful write, with its verdict."""
    verdicts: list[ClaimVerdict] = []
    claims = find_claims(output, tools)
    writes = [e for e in events if e.effect == "write" and e.tool in tools]
    claimed: set[int] = set()
    for claim in claims:
        tool = tools[claim.tool]
        related = [e for e in writes if e.tool == claim.tool and _mentions(e, claim.ids)]
        succeeded = [e for e in related if e.ok]
        claimed.update(id(e) for e in related)
        state: bool | None = None
        detail = ""
        if tool.confirm is not None and live is not None and live.store is not None:
            arguments = dict((succeeded or related)[-1].arguments) if (succeeded or related) else {}
            if not arguments and claim.ids:
                arguments = {"id": claim.ids[0], "order_id": claim.ids[0]}
            missing = unbound(tool.confirm, arguments)
            if missing:  # no call to take them from, and the sentence names no id: the store cannot be asked
                detail = f"the store cannot be asked: no {claim.tool} call and no {', '.join(missing)} in the answer"
            else:
                state, detail = await live.check(tool.confirm, arguments)
        if state is False:
            status = "unsupported"
            reason = f"the store does not show it ({detail})"
        elif succeeded:
            status, reason = "match", "a successful write in the trace" + (", confirmed by the store" if state else "")
        elif state:
            status = "unverified"
            reason = "no attempt succeeded in the trace, though the store shows the change"
        else:
            failed = ", ".join(sorted({e.error_class or "failed" for e in related})) or "no call at all"
            status, reason = "unsupported", f"no successful {claim.tool} in the trace ({failed})" + (
                f"; {detail}" if detail else "")
        verdicts.append(ClaimVerdict(claim.tool, status, claim.sentence, reason))
    for event in writes:
        if event.ok and id(event) not in claimed and not any(v.tool == event.tool for v in verdicts):
            verdicts.append(ClaimVerdict(event.tool, "unclaimed", "", f"{event.tool} succeeded but the answer "
                                                                      "does not say so"))
    return verdicts
