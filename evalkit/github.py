"""GitHub glue: the sticky pull-request comment, the step summary, and the prompt-PR workflow template.

Only the REST calls a comment needs, over the standard library: list the PR's comments, then edit the one
that carries evalkit's marker or create it. The token is sent, never printed.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError, PublishError
from evalkit.report.markdown import MARKER

WORKFLOW_TEMPLATE = "prompt-pr.yml"
SWEEP_TEMPLATE = "sweep.yml"
SWEEP_EVERY = (1, 2, 3, 4, 6, 8, 12)
"""Sweep intervals (hours) that divide a day, so sweeps fall at the same hours each day (a daily sweep would
see one hour only, and time of day could never be told apart from the day)."""
PAGE_SIZE = 100
MAX_PAGES = 50
"""A PR with more than 5,000 comments is not searched further for the marker (a new comment is made)."""


@dataclass(frozen=True)
class PullRequest:
    """Where a comment goes."""

    repository: str
    """``owner/name``."""
    number: int
    api_url: str = "https://api.github.com"


def pull_request_from_env(environ: dict[str, str] | None = None) -> PullRequest:
    """The PR of the running GitHub Actions job (``GITHUB_REPOSITORY``, ``GITHUB_EVENT_PATH``)."""
    env = dict(os.environ if environ is None else environ)
    repository = env.get("GITHUB_REPOSITORY")
    event_path = env.get("GITHUB_EVENT_PATH")
    if not repository or not event_path:
        raise ConfigError("ci comment: expected GITHUB_REPOSITORY and GITHUB_EVENT_PATH (set by GitHub Actions), "
                          "got them unset; pass --repo and --pr outside Actions")
    try:
        event = json.loads(Path(event_path).read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{event_path}: cannot read the event payload ({exc})") from None
    number = (event.get("pull_request") or {}).get("number") or event.get("number")
    if not isinstance(number, int):
        raise ConfigError(f"{event_path}: pull_request.number: expected a pull-request event, got none")
    return PullRequest(repository, number, env.get("GITHUB_API_URL", "https://api.github.com"))


def _request(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Accept": "application/vnd.github+json", "Authorization": f"Bearer {token}",
        "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "evalkit",
        **({"Content-Type": "application/json"} if data else {}),
    })
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:200].replace("\n", " ")
        raise PublishError(f"GitHub {method} {url.split('?')[0]}: expected 2xx, got HTTP {exc.code}: {detail}") \
            from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise PublishError(f"GitHub {method} {url.split('?')[0]}: cannot connect ({exc})") from None
    return json.loads(payload) if payload else None


def post_sticky_comment(body: str, pr: PullRequest, token: str) -> str:
    """Creates evalkit's comment on the PR, or edits it if one is there; returns its URL."""
    if MARKER not in body:
        body = f"{MARKER}\n{body}"
    base = pr.api_url.rstrip("/")
    existing = None
    for page in range(1, MAX_PAGES + 1):
        comments = _request("GET", f"{base}/repos/{pr.repository}/issues/{pr.number}/comments"
                                   f"?per_page={PAGE_SIZE}&page={page}", token)
        existing = next((c for c in comments if MARKER in (c.get("body") or "")), None)
        if existing is not None or len(comments) < PAGE_SIZE:
            break
    if existing is not None:
        result = _request("PATCH", f"{base}/repos/{pr.repository}/issues/comments/{existing['id']}", token,
                          {"body": body})
    else:
        result = _request("POST", f"{base}/repos/{pr.repository}/issues/{pr.number}/comments", token, {"body": body})
    return str(result.get("html_url", "")) if isinstance(result, dict) else ""


def append_step_summary(markdown: str, environ: dict[str, str] | None = None) -> bool:
    """Appends to ``$GITHUB_STEP_SUMMARY`` when running in Actions; returns whether it did."""
    path = (os.environ if environ is None else environ).get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(markdown)
    return True


def workflow_template(name: str = WORKFLOW_TEMPLATE) -> str:
    """A workflow template that ``evalkit ci init`` writes (the prompt-PR gate by default)."""
    return resources.files("evalkit.templates").joinpath(name).read_text("utf-8")


def _set(text: str, pattern: str, value: str, what: str) -> str:
    """Replaces the one template line matching ``pattern`` (group 1 is kept, the quoted value replaced)."""
    import re

    replaced, count = re.subn(pattern, lambda m: f'{m.group(1)}"{value}"{m.group(2)}', text, flags=re.MULTILINE)
    if count != 1:  # pragma: no cover - the template and this function ship together
        raise AssertionError(f"sweep template: expected one {what} line, found {count}")
    return replaced


def sweep_workflow(*, every: int = 3, minute: int = 17, ladder: str = "1,2,4,8,16",
                   ladder_cron: str = "43 4 * * 1", suites: str = "suites/*.yaml",
                   install: str | None = None) -> str:
    """The scheduled-sweep workflow: a sweep every ``every`` hours at ``minute`` past, a weekly load ladder."""
    if every not in SWEEP_EVERY:
        raise ConfigError(f"--every: expected hours dividing a day ({', '.join(map(str, SWEEP_EVERY))}), got {every}")
    if not 0 <= minute <= 59:
        raise ConfigError(f"--minute: expected 0–59, got {minute}")
    fields = ladder_cron.split()
    if len(fields) != 5:
        raise ConfigError(f"--ladder-cron: expected a cron expression of 5 fields, got {ladder_cron!r}")
    from evalkit.analysis.ladder import parse_ladder

    steps = ",".join(map(str, parse_ladder(ladder)))
    hours = "*" if every == 1 else f"*/{every}"
    text = workflow_template(SWEEP_TEMPLATE)
    text = _set(text, r'^(    - cron: )"[^"]*"(  # evalkit: sweep schedule.*)$', f"{minute} {hours} * * *",
                "sweep cron")
    text = text.replace("(every 3 h at :17;", f"(every {every} h at :{minute:02d};")
    text = _set(text, r'^(    - cron: )"[^"]*"(  # evalkit: ladder schedule.*)$', ladder_cron, "ladder cron")
    text = _set(text, r'^(  EVALKIT_LADDER_CRON: )"[^"]*"()$', ladder_cron, "EVALKIT_LADDER_CRON")
    text = _set(text, r'^(  EVALKIT_LADDER: )"[^"]*"()$', steps, "EVALKIT_LADDER")
    text = _set(text, r'^(  EVALKIT_SUITES: )"[^"]*"()$', suites, "EVALKIT_SUITES")
    if install is not None:
        text = _set(text, r'^(  EVALKIT_INSTALL: )"[^"]*"()$', install, "EVALKIT_INSTALL")
    return text


def init_workflow(root: str | os.PathLike[str] = ".", *, force: bool = False, sweep: bool = False,
                  **settings: Any) -> Path:
    """Writes ``.github/workflows/evalkit.yml`` (or, with ``sweep``, ``evalkit-sweep.yml``) under ``root``.

    Refuses to overwrite unless forced. ``settings`` go to :func:`sweep_workflow`.
    """
    name = "evalkit-sweep.yml" if sweep else "evalkit.yml"
    target = Path(root) / ".github" / "workflows" / name
    text = sweep_workflow(**settings) if sweep else workflow_template()
    if target.exists() and not force:
        raise ConfigError(f"{target}: expected no existing workflow, got one (use --force to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, "utf-8")
    return target
