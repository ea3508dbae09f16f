"""The sticky PR comment, tested against a local server that records the GitHub REST calls it receives."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from evalkit import ExitCode, PublishError
from evalkit.cli import main
from evalkit.github import PullRequest, init_workflow, post_sticky_comment, pull_request_from_env, workflow_template
from evalkit.report.markdown import MARKER

from .conftest import REPO


class FakeGitHub:
    """Records requests; serves a PR's comments from memory, paginated like GitHub."""

    def __init__(self, comments: list[dict[str, Any]], fail: int | None = None) -> None:
        self.comments = comments
        self.requests: list[dict[str, Any]] = []
        self.fail = fail
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _reply(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                owner.requests.append({"method": self.command, "path": self.path, "body": body,
                                       "auth": self.headers.get("Authorization"),
                                       "version": self.headers.get("X-GitHub-Api-Version")})
                if owner.fail:
                    self._reply(owner.fail, {"message": "Resource not accessible by integration"})
                    return
                if self.command == "GET":
                    page = int(parse_qs(urlsplit(self.path).query)["page"][0])
                    self._reply(200, owner.comments[(page - 1) * 100: page * 100])
                elif self.command == "POST":
                    comment = {"id": 999, "body": body["body"], "html_url": "https://github.test/c/999"}
                    owner.comments.append(comment)
                    self._reply(201, comment)
                else:
                    comment_id = int(self.path.rsplit("/", 1)[1])
                    self._reply(200, {"id": comment_id, "html_url": f"https://github.test/c/{comment_id}"})

            do_GET = do_POST = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub([{"id": i, "body": f"comment {i}"} for i in range(150)])
    yield fake
    fake.close()


def test_first_report_creates_one_comment(github: FakeGitHub) -> None:
    url = post_sticky_comment("## report", PullRequest("o/r", 7, github.url), "tok-123")
    assert url == "https://github.test/c/999"
    assert [(r["method"], r["path"]) for r in github.requests] == [
        ("GET", "/repos/o/r/issues/7/comments?per_page=100&page=1"),
        ("GET", "/repos/o/r/issues/7/comments?per_page=100&page=2"),
        ("POST", "/repos/o/r/issues/7/comments"),
    ]
    assert github.requests[-1]["body"] == {"body": f"{MARKER}\n## report"}
    assert github.requests[0]["auth"] == "Bearer tok-123"
    assert github.requests[0]["version"] == "2022-11-28"


def test_a_later_report_edits_the_same_comment(github: FakeGitHub) -> None:
    github.comments[120] = {"id": 120, "body": f"{MARKER}\nold report"}
    post_sticky_comment(f"{MARKER}\nnew report", PullRequest("o/r", 7, github.url), "tok")
    assert github.requests[-1]["method"] == "PATCH"
    assert github.requests[-1]["path"] == "/repos/o/r/issues/comments/120"
    assert github.requests[-1]["body"] == {"body": f"{MARKER}\nnew report"}
    assert len(github.requests) == 3  # two pages searched, then one edit


def test_a_refusal_is_one_line_without_the_token() -> None:
    fake = FakeGitHub([], fail=403)
    try:
        with pytest.raises(PublishError) as info:
            post_sticky_comment("x", PullRequest("o/r", 7, fake.url), "secret-token")
    finally:
        fake.close()
    assert str(info.value).startswith("GitHub GET ")
    assert "expected 2xx, got HTTP 403: " in str(info.value)
    assert "secret-token" not in str(info.value)


def test_pull_request_from_the_actions_environment(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 42}}))
    pr = pull_request_from_env({"GITHUB_REPOSITORY": "o/r", "GITHUB_EVENT_PATH": str(event),
                                "GITHUB_API_URL": "http://127.0.0.1:1"})
    assert pr == PullRequest("o/r", 42, "http://127.0.0.1:1")


def test_cli_comment_posts_the_markdown_file(github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "report.md").write_text("## hello")
    assert main(["ci", "comment", "--markdown", "report.md", "--repo", "o/r", "--pr", "3",
                 "--api-url", github.url]) == ExitCode.USAGE_ERROR
    assert "GITHUB_TOKEN, got it unset" in capsys.readouterr().err
    monkeypatch.setenv("GITHUB_TOKEN", "tok")
    assert main(["ci", "comment", "--markdown", "report.md", "--repo", "o/r", "--pr", "3",
                 "--api-url", github.url]) == ExitCode.OK
    assert capsys.readouterr().out == "commented on o/r#3: https://github.test/c/999\n"


def test_ci_init_writes_the_workflow_once(tmp_path: Path) -> None:
    path = init_workflow(tmp_path)
    assert path == tmp_path / ".github" / "workflows" / "evalkit.yml"
    assert path.read_text() == workflow_template()
    with pytest.raises(Exception, match="use --force"):
        init_workflow(tmp_path)


def test_the_repo_workflow_is_the_template_but_for_what_it_installs() -> None:
    ours = (REPO / ".github" / "workflows" / "prompt-pr.yml").read_text().splitlines()
    template = workflow_template().splitlines()
    differing = [(a, b) for a, b in zip(ours, template, strict=True) if a != b]
    assert [b.strip() for _, b in differing] == [
        "# What to install: the published package (this line is what `evalkit ci init` writes).",
        'EVALKIT_INSTALL: "evalkit[local]"',
    ]


def test_the_workflow_is_least_privilege() -> None:
    import yaml

    workflow = yaml.safe_load(workflow_template())
    assert workflow["permissions"] == {}
    assert "pull_request_target" not in workflow[True]  # PyYAML reads the key `on` as True
    assert workflow["jobs"]["gate"]["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert workflow["jobs"]["refresh-baselines"]["permissions"] == {"contents": "read"}
    for job in workflow["jobs"].values():
        checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@"))
        assert checkout["with"]["persist-credentials"] is False
