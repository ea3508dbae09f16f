"""Times `evalkit lint` on 10,000 generated prompt files of 2-8 KB, plain and diff-aware (--base).

The files are realistic prompts: Markdown sections, jinja2 variables, the odd e-mail address or model id.
They are committed to a throwaway git repository; then 5% lose their safety section and 5% shrink, and
the diff-aware run reads the base with one `git cat-file --batch`.

Usage: python bench/lint_bench.py [--files 10000] [--limit 5] [--base-limit 15]
"""

from __future__ import annotations

import argparse
import random
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


def run(command: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 4):
        raise SystemExit(f"{command} failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


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
        plain, summary = run(evalkit, root)
        print(f"{args.files:,} files, {total / 1e6:.1f} MB · lint: {plain:.2f} s · {summary}")
        diff, summary = run([*evalkit, "--base", "HEAD"], root)
        print(f"{args.files:,} files · lint --base HEAD: {diff:.2f} s · {summary}")
    ok = plain <= args.limit and diff <= args.base_limit
    print(f"limits {args.limit:g} s / {args.base_limit:g} s · {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
