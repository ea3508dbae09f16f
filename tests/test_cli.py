"""The CLI in-process (CliRunner) and as a process: exit codes and the exact lines it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalkit import ExitCode
from evalkit.cli import cli, main
from evalkit.providers.local import MODEL_NAME
from evalkit.results import shard_of

from .conftest import REPO


def test_help_and_version_import_no_sdk_or_stats_library() -> None:
    code = (
        "import sys\n"
        "from evalkit.cli import main\n"
        "for argv in (['--help'], ['--version'], ['run', '--help']):\n"
        "    assert main(argv) == 0\n"
        "heavy = [m for m in ('openai', 'anthropic', 'scipy', 'pandas', 'numpy', 'rich.progress', 'jsonschema')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("HEAVY []")
    assert "evalkit, version 0.1.0" in out


def test_config_error_is_one_line_without_traceback(write, capsys: pytest.CaptureFixture[str]) -> None:
    write("bad.yaml", "name: x\ntarget: {provider: local, user: hi}\ncases: [{vars: {}, tagz: []}]\n")
    assert main(["run", "bad.yaml"]) == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err
    assert err == ("evalkit: error: bad.yaml:3: cases[0].tagz: unknown key 'tagz'; expected one of: "
                   "description, expect, faults, id, route, tags, user, user_sim, vars\n")


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == ExitCode.USAGE_ERROR
    assert "expected a SUITE file or --resume RUN_DIR" in capsys.readouterr().err
    assert main(["run", "x.yaml", "--shard", "0/2"]) == ExitCode.USAGE_ERROR
    assert "expected i/n with 1 <= i <= n, got '0/2'" in capsys.readouterr().err


def test_show_of_a_missing_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "nowhere"]) == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err == "evalkit: error: nowhere: not a run directory (expected manifest.json in it)\n"


def test_show_refuses_an_unknown_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "manifest.json").write_text(json.dumps({"format": "evalkit.run/99"}))
    assert main(["show", "r"]) == ExitCode.USAGE_ERROR
    assert "format: expected 'evalkit.run/2', got 'evalkit.run/99'" in capsys.readouterr().err


def test_missing_api_key_exit_code(write, capsys: pytest.CaptureFixture[str]) -> None:
    write("s.yaml", "name: x\ntarget: {provider: openai, model: gpt-x, user: hi}\ncases: [{id: a}]\n")
    assert main(["run", "s.yaml", "-q"]) == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err == (
        "evalkit: error: s.yaml: target.provider: openai needs an API key; expected it in the environment "
        "variable OPENAI_API_KEY, got it unset\n"
    )
    assert not Path(".evalkit").exists()  # nothing half-made is left behind


@pytest.mark.integration
def test_run_then_show_render_the_same_summary(write, model_server, tmp_path: Path) -> None:
    write("s.yaml", f"""
        name: cli
        target:
          provider: openai
          base_url: {model_server.base_url}
          model: {MODEL_NAME}
          params: {{max_tokens: 8}}
          user: "Say {{{{ word }}}}"
        cases:
          - {{id: a, vars: {{word: yes}}, tags: [route-a], expect: [{{length: {{min: 1}}}}]}}
          - {{id: b, vars: {{word: no}}, tags: [route-b], expect: [{{equals: "never said"}}]}}
    """)
    runner = CliRunner()
    result = runner.invoke(cli, ["run", "s.yaml", "--run-id", "r", "-q"], terminal_width=120)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "cli · r" in out
    assert "│ route-a │       1 │      1 │    100.0% │      0 │" in out
    assert "│ route-b │       1 │      0 │      0.0% │      0 │" in out
    assert "│ total   │       2 │      1 │     50.0% │      0 │" in out
    assert "b: equals: expected 'never said', got" in out
    assert "results: .evalkit/runs/r" in out
    shown = runner.invoke(cli, ["show", ".evalkit/runs/r"], terminal_width=120)
    assert shown.exit_code == 0
    assert shown.output.splitlines()[:8] == out.splitlines()[:8]


@pytest.mark.integration
def test_quickstart_runs_the_example_suite_on_the_embedded_model(tmp_path: Path) -> None:
    """The README's first Quickstart line, as a user runs it: exit 0, a summary, results written.

    One shard of the suite: the whole of it (420 cases) is timed by bench/example_gate.py, not run by tests.
    """
    process = subprocess.run(
        [sys.executable, "-m", "evalkit.cli", "run", str(REPO / "suites" / "support_reply.yaml"),
         "--out", str(tmp_path / "runs"), "--shard", "1/20"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert process.returncode == 0, process.stderr
    assert "support_reply ·" in process.stdout and "│ total " in process.stdout
    assert "running" in process.stderr  # the progress bar
    (run_dir,) = (tmp_path / "runs").iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["conditions"]["provider"] == "local"
    assert manifest["conditions"]["models_returned"] == [MODEL_NAME]
    planned = [c for c in manifest["suite"]["case_ids"] if shard_of(c, 20) == 1]
    assert len((run_dir / "journal.jsonl").read_text().splitlines()) == 1 + len(planned) > 10


def test_a_bug_exits_70_with_its_traceback_never_the_regression_code(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import evalkit.results

    def broken(location: object) -> None:
        raise ZeroDivisionError("planted bug")

    monkeypatch.setattr(evalkit.results, "load_run", broken)
    assert main(["show", "anything"]) == ExitCode.INTERNAL_ERROR == 70
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "ZeroDivisionError: planted bug" in err
    assert err.rstrip().endswith("(exit 70)")


@pytest.mark.parametrize(("argv", "line"), [
    (["run", "x.yaml", "--concurrency", "0"],
     "evalkit run: error: Invalid value for '--concurrency': 0 is not in the range 1<=x<=10000. "
     "(see: evalkit run --help)"),
    (["nosuch"], "evalkit: error: No such command 'nosuch'. (see: evalkit --help)"),
    (["compare", "r"], "evalkit compare: error: Missing option '--baseline'. (see: evalkit compare --help)"),
])
def test_click_usage_errors_are_one_line(argv: list[str], line: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err == line + "\n"
