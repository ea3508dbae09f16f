"""Service lifecycles through the CLI (as a process): no process outlives a run that ends normally, one
interrupted with Ctrl-C, or one whose service crashes mid-run (the run goes on, its cases erroring)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalkit.results import load_run

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "orders"


def _suite(folder: Path, *, extra: str = "", cases: int = 6, latency: float = 0.0) -> Path:
    lines = "".join(f"  - {{id: c{i}, vars: {{order_id: A100{1 + i % 8}, action: cancel, plant: honest}}}}\n"
                    for i in range(cases))
    text = f"""
name: lifecycle
target: {{callable: "tests.test_agent_scripts:scripted", timeout: 30}}
concurrency: 1
services:
  orders:
    command: ["{{python}}", "{EXAMPLE / 'service.py'}", "--port", "{{port}}", "--db", "{{suite_dir}}/orders.db",
              "--spawn-helper"{extra}]
state:
  sqlite: {{path: "{{suite_dir}}/orders.db", seed: "{EXAMPLE / 'seed.sql'}"}}
tools:
  get_order: {{http: {{service: orders, path: "/orders/{{order_id}}"}}}}
  cancel_order: {{http: {{service: orders, method: POST, path: "/orders/{{order_id}}/cancel"}}, effect: write}}
  refund_order: {{http: {{service: orders, method: POST, path: "/orders/{{order_id}}/refund"}}, effect: write}}
faults:
  slow: [{{tool: get_order, kind: latency, latency: {latency}}}]
defaults: {{faults: slow, expect: [{{no-unsupported-claims: true}}]}}
cases:
{lines}"""
    path = folder / "lifecycle.yaml"
    path.write_text(text, "utf-8")
    return path


def _ours(folder: Path) -> list[str]:
    """Command lines of live processes that mention this test's folder (services and their helpers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            state = (entry / "stat").read_text().split(") ")[-1][:1]
        except OSError:
            continue
        if str(folder) in command and state != "Z":
            found.append(command)
    return found


def _default_sigint() -> None:
    # A background job starts with SIGINT ignored, and Python then installs no KeyboardInterrupt handler;
    # restore the default so the child sees Ctrl-C the way a terminal user's evalkit does.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _evalkit(suite: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "evalkit", "run", str(suite), "--out", str(out), "--run-id", "r",
                             "-q"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=_default_sigint)


def _wait_gone(folder: Path, seconds: float = 10.0) -> list[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = _ours(folder)
        if not left:
            return []
        time.sleep(0.1)
    return _ours(folder)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_normal_end_leaves_no_process(tmp_path: Path) -> None:
    process = _evalkit(_suite(tmp_path), tmp_path / "runs")
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert _wait_gone(tmp_path) == []
    run = load_run(tmp_path / "runs" / "r")
    assert run.status == "complete" and len(run.results) == 6


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_ctrl_c_leaves_no_process(tmp_path: Path) -> None:
    process = _evalkit(_suite(tmp_path, cases=40, latency=0.4), tmp_path / "runs")
    deadline = time.monotonic() + 120
    while not any("orders-helper" in c for c in _ours(tmp_path)):
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()[0]
        time.sleep(0.1)
    time.sleep(1.5)  # a few cases in
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    assert "evalkit run --resume" in output
    assert _wait_gone(tmp_path) == []


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_service_crash_mid_run_leaves_no_process_and_the_run_goes_on(tmp_path: Path) -> None:
    process = _evalkit(_suite(tmp_path, extra=', "--crash-after", "5"'), tmp_path / "runs")
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert _wait_gone(tmp_path) == []
    run = load_run(tmp_path / "runs" / "r")
    assert run.status == "complete" and len(run.results) == 6
    errors = [e.error for r in run.results for e in r.trajectory.tool_events if e.error_class == "connection"]
    assert errors and "service 'orders' is not running (exited with code 3)" in errors[-1]
    assert "crashing after 5 requests" in errors[-1]
