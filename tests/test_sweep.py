"""Load ladders (the knee, a real ladder on the embedded model) and the scheduled-sweep workflow."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from evalkit.analysis.ladder import parse_ladder, sample_cases, summarise_ladder
from evalkit.cli import main
from evalkit.errors import ConfigError
from evalkit.github import init_workflow, sweep_workflow, workflow_template
from evalkit.providers.local import MODEL_NAME, LocalServer
from evalkit.store import open_store
from evalkit.suite import load_suite

from .history_runs import make_run, start

REPO = Path(__file__).resolve().parent.parent


def test_parse_ladder() -> None:
    assert parse_ladder("4, 1,2") == (1, 2, 4)
    for bad in ("", "1,x", "0,1", "2,2"):
        with pytest.raises(ConfigError, match="--ladder: expected"):
            parse_ladder(bad)


def test_the_knee_is_where_latency_departs_from_flat() -> None:
    rng = np.random.default_rng(0)
    runs = []
    for k, slowdown in ((1, 1.0), (2, 1.03), (4, 1.9), (8, 3.5)):
        latencies = list(np.exp(rng.normal(0, 0.1, 60)) * slowdown)
        run = make_run(f"c{k}", start(0, k), latencies, concurrency=k)
        conditions = run.conditions
        assert conditions is not None
        runs.append(replace(run, conditions=replace(conditions, duration_s=60 * slowdown / k)))
    report = summarise_ladder(list(reversed(runs)), sweep_id="s")
    assert [s.concurrency for s in report.steps] == [1, 2, 4, 8]
    assert report.knee == 4 and report.best_throughput == 8
    assert report.steps[1].median_ratio == pytest.approx(1.03, abs=0.05)
    assert report.steps[2].p_value is not None and report.steps[2].p_value < 1e-6
    assert report.verdict.startswith("knee at concurrency 4: median latency ×1.88 of concurrency 1's (p = ")
    assert "flat up to 2" in report.verdict
    flat = summarise_ladder(runs[:2], sweep_id="s")
    assert flat.knee is None and flat.verdict.startswith("latency stays flat up to concurrency 2")


def test_a_sample_is_seeded() -> None:
    suite = load_suite(REPO / "suites" / "support_reply.yaml")
    first = [c.id for c in sample_cases(suite, 5, seed=1).cases]
    assert first == [c.id for c in sample_cases(suite, 5, seed=1).cases] and len(first) == 5
    assert first != [c.id for c in sample_cases(suite, 5, seed=2).cases]
    assert sample_cases(suite, None, seed=1) is suite


@pytest.mark.integration
def test_a_real_ladder_on_the_embedded_model(model_server: LocalServer, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    questions = ["What is 2+2?", "Name a colour.", "Say hi.", "Name a fruit.", "Name an animal.", "Say bye."]
    cases = "\n".join(f"  - {{id: q{i}, vars: {{question: {json.dumps(q)}}}}}" for i, q in enumerate(questions))
    suite = tmp_path / "tiny.yaml"
    suite.write_text(
        "name: tiny\ntarget:\n  provider: openai\n"
        f"  base_url: {model_server.base_url}\n  model: {MODEL_NAME}\n"
        "  params: {max_tokens: 8, temperature: 0}\n  user: '{{ question }}'\n"
        f"defaults:\n  expect: [{{length: {{min: 1}}}}]\ncases:\n{cases}\n"
    )
    code = main(["sweep", str(suite), "--ladder", "1,2", "--sample", "4", "--quiet", "--out", str(tmp_path / "runs"),
                 "--json", str(tmp_path / "ladder.json")])
    out = capsys.readouterr().out
    assert code == 0
    report = json.loads((tmp_path / "ladder.json").read_text())
    assert report["format"] == "evalkit.ladder/1"
    steps = report["steps"]
    assert [s["concurrency"] for s in steps] == [1, 2] and [s["calls"] for s in steps] == [4, 4]
    assert steps[1]["in_flight_max"] == 2 and all(s["throughput_per_s"] > 0 for s in steps)
    assert "load ladder" in out and report["sweep_id"] in out
    folder = tmp_path / "runs" / report["sweep_id"]
    assert json.loads((folder / "ladder.json").read_text())["runs"] == [s["run_id"] for s in steps]
    with open_store() as store:
        ladder = store.runs("tiny", kinds=("ladder",))
        assert list(ladder["concurrency"]) == [1, 2] and set(ladder["sweep_id"]) == {report["sweep_id"]}
        assert store.runs("tiny").empty  # ladder steps never pollute the ordinary history
        assert len(store.calls("tiny", kinds=("ladder",))) == 8
    with open_store(tmp_path / "other.sqlite") as other:  # re-ingesting the sweep folder keeps them ladder steps
        from evalkit.store import ingest_paths

        assert all(o.ingested for o in ingest_paths(other, [folder]))
        assert list(other.runs("tiny", kinds=("ladder",))["sweep_id"]) == [report["sweep_id"]] * 2


# --- the scheduled-sweep workflow ---------------------------------------------------------------------------


def test_ci_init_sweep_writes_the_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ci", "init", "--sweep", "--dir", str(tmp_path)]) == 0
    path = tmp_path / ".github" / "workflows" / "evalkit-sweep.yml"
    assert capsys.readouterr().out.strip() == f"wrote {path}"
    assert path.read_text() == sweep_workflow() == workflow_template("sweep.yml")
    assert main(["ci", "init", "--sweep", "--dir", str(tmp_path)]) == 2
    assert "use --force to replace it" in capsys.readouterr().err
    assert not (tmp_path / ".github" / "workflows" / "evalkit.yml").exists()


def test_the_sweep_schedule_is_configurable(tmp_path: Path) -> None:
    path = init_workflow(tmp_path, sweep=True, every=6, minute=41, ladder="8,1,2", ladder_cron="5 6 * * 0",
                         suites="evals/*.yaml")
    workflow = yaml.safe_load(path.read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert [c["cron"] for c in triggers["schedule"]] == ["41 */6 * * *", "5 6 * * 0"]
    assert workflow["env"]["EVALKIT_LADDER"] == "1,2,8"
    assert workflow["env"]["EVALKIT_LADDER_CRON"] == "5 6 * * 0" and workflow["env"]["EVALKIT_SUITES"] == "evals/*.yaml"
    assert "(every 6 h at :41;" in path.read_text()
    with pytest.raises(ConfigError, match="--every: expected hours dividing a day"):
        sweep_workflow(every=5)
    with pytest.raises(ConfigError, match="--minute: expected 0–59, got 60"):
        sweep_workflow(minute=60)


def test_the_sweep_workflow_is_least_privilege_and_off_the_hour() -> None:
    text = workflow_template("sweep.yml")
    workflow = yaml.safe_load(text)
    triggers = workflow[True]
    sweep_cron, ladder_cron = (c["cron"] for c in triggers["schedule"])
    assert sweep_cron.split()[0] not in ("0", "00") and sweep_cron.split()[1] == "*/3"
    assert ladder_cron == workflow["env"]["EVALKIT_LADDER_CRON"]
    assert "workflow_dispatch" in triggers and workflow["permissions"] == {}
    job = workflow["jobs"]["sweep"]
    assert job["permissions"] == {"contents": "write"}
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["persist-credentials"] is False
    for step in job["steps"]:
        assert "${{" not in step.get("run", ""), step.get("name")  # no expression expanded inside a script
        if "uses" in step:
            assert len(step["uses"].split("@")[1]) == 40  # pinned by full commit SHA
    assert "EVALKIT_SWEEP_STARTED" in job["steps"][0]["run"]  # the actual start, not the schedule


def test_this_repository_sweeps_its_own_suites() -> None:
    """The repo's workflow is the template, installing this checkout instead of the published package."""
    ours = (REPO / ".github" / "workflows" / "evalkit-sweep.yml").read_text().splitlines()
    template = workflow_template("sweep.yml").splitlines()
    differing = [(a, b) for a, b in zip(template, ours, strict=True) if a != b]
    assert [b.strip() for _, b in differing] == [
        '# What to install: this repository itself (`evalkit ci init --sweep` writes "evalkit[local,postgres]" here).',
        'EVALKIT_INSTALL: ".[local,postgres]"',
    ]
