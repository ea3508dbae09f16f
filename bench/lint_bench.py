"""Times `evalkit lint` on 10,000 generated prompt files of 2-8 KB, plain and diff-aware (--base).

The files are realistic prompts: Markdown sections, jinja2 variables, the odd e-mail address or model id;
the real prompts of tests/data/lint-corpus (jinja2, Go, Semantic Kernel, Handlebars, Markdown) are added.
They are committed to a throwaway git repository; then 5% lose their safety section and 5% shrink, and
the diff-aware run reads the base with one `git cat-file --batch`.

Side by side, a bare baseline reads every file and counts its lines in one Python process: the ratio of
lint to it is what the machine's load does not change much. CPU seconds (user + system) are printed beside
wall time.

Usage: python bench/lint_bench.py [--files 10000] [--limit 5] [--base-limit 15]
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SECTIONS = ["Role", "Context", "Policy", "Safety", "Tools", "Examples", "Output format"]
WORDS = [
    "customer", "order", "refund", "policy", "shipping", "account", "invoice", "warranty", "agent", "escalate",
    "reply", "concise", "polite", "verify", "identity", "never", "promise", "discount", "deliver", "within",
    "business", "days",
]


def paragraph(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def prompt(rng: random.Random, index: int) -> str:
    target = rng.randint(2048, 8192)
    parts = []
    for name in SECTIONS:
        body = [paragraph(rng, rng.randint(8, 30)) for _ in range(rng.randint(1, 4))]
        if name == "Context":
            body.append("The customer is {{ customer_name }} and writes about {{ topic }}.")
        if name == "Tools" and index % 7 == 0:
            body.append("Use `lookup_order` before answering, and escalate() when unsure.")
        if name == "Examples" and index % 50 == 0:
            body.append("Reply to support@example.com only when asked; default model gpt-4o.")
        parts.append(f"## {name}\n" + "\n".join(body) + "\n")
    text = "\n".join(parts)
    while len(text) < target:
        text += "\n" + paragraph(rng, 40)
    if index % 11 == 0:
        text += "\n{% if vip %}Treat {{ customer_name }} as a VIP.{% endif %}\n"
    return text[: max(target, 2048)]


CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "lint-corpus"
BASELINE = """
import sys
from pathlib import Path
lines = 0
for path in sorted(Path(sys.argv[1]).rglob("*")):
    if path.is_file():
        lines += path.read_text("utf-8").count("\\n")
print(lines, "lines read")
"""


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command: list[str], cwd: Path) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the command and its workers, last line of its output)."""
    cpu = _cpu()
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 4):
        raise SystemExit(f"{command} failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, _cpu() - cpu, done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--limit", type=float, default=5.0)
    parser.add_argument("--base-limit", type=float, default=15.0)
    args = parser.parse_args()
    rng = random.Random(7)
    evalkit = [sys.executable, "-m", "evalkit.cli", "lint", "prompts", "--format", "text"]
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        (root / "prompts").mkdir()
        total = 0
        for i in range(args.files):
            text = prompt(rng, i)
            total += len(text)
            (root / "prompts" / f"p{i:05d}.md").write_text(text)
        if CORPUS.is_dir():
            shutil.copytree(CORPUS, root / "prompts" / "corpus")
        (root / "evalkit.yaml").write_text(
            "lint:\n  required_sections:\n    - glob: \"prompts/*.md\"\n"
            "      sections: [Role, Policy, Safety, Output format]\n      min_chars: 20\n")
        # gc.auto=0: 10,000 loose objects would start a background `git gc` that competes with what is measured.
        git = ["git", "-c", "user.email=b@b", "-c", "user.name=b", "-c", "gc.auto=0", "-c", "maintenance.auto=false"]
        subprocess.run([*git, "init", "-q"], cwd=root, check=True)
        subprocess.run([*git, "add", "."], cwd=root, check=True)
        subprocess.run([*git, "commit", "-qm", "base"], cwd=root, check=True)
        for i in range(0, args.files, 20):  # 5%: the safety section deleted
            path = root / "prompts" / f"p{i:05d}.md"
            text = path.read_text()
            start = text.find("## Safety")
            end = text.find("## Tools", start)
            path.write_text(text[:start] + text[end:])
        for i in range(10, args.files, 20):  # 5%: the policy shrunk to one line
            path = root / "prompts" / f"p{i:05d}.md"
            text = path.read_text()
            start = text.find("## Policy")
            end = text.find("## Safety", start)
            path.write_text(text[:start] + "## Policy\nBe polite and follow every rule.\n\n" + text[end:])
        bare, bare_cpu, _ = run([sys.executable, "-c", BASELINE, "prompts"], root)
        print(f"{args.files:,} files, {total / 1e6:.1f} MB · bare read: {bare:.2f} s ({bare_cpu:.2f} s CPU)")
        plain, plain_cpu, summary = run(evalkit, root)
        print(f"lint: {plain:.2f} s ({plain_cpu:.2f} s CPU, {plain / bare:.1f}× the bare read) · {summary}")
        diff, diff_cpu, summary = run([*evalkit, "--base", "HEAD"], root)
        print(f"lint --base HEAD: {diff:.2f} s ({diff_cpu:.2f} s CPU, {diff / bare:.1f}× the bare read) · {summary}")
    ok = plain <= args.limit and diff <= args.base_limit
    print(f"limits {args.limit:g} s / {args.base_limit:g} s · {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
