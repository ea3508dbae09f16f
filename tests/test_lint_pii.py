"""Personal data and secrets (evalkit.text.pii): precision, the shapes that matter, redaction everywhere."""

from __future__ import annotations

import json

import pytest

from evalkit.lint import lint
from evalkit.report.lint import render_lint_github, render_lint_json, render_lint_sarif
from evalkit.text.pii import find, redact_spans

FOUND = [
    ("write to maria.lopez@outlook.com", "e-mail address"),
    ("bob@uni.ac.uk or bob@例え.jp", "e-mail address"),
    ("card 4556 7375 8689 9855", "payment card number"),
    ("amex 3782 822463 10013", "payment card number"),
    ("mastercard 2223000048400011", "payment card number"),
    ("call (415) 867-5309 today", "phone number"),
    ("call 415 867 5309 today", "phone number"),
    ("call +1 212 867 5309", "phone number"),
    ("on WhatsApp: +1 2128675309.", "phone number"),
    ("appelez le 06 12 34 56 78", "phone number"),
    ("ou le +33 6 12 34 56 78", "phone number"),
    ("ring +44 20 7946 0958", "phone number"),
    ("IBAN DE44 5001 0517 5407 3249 31", "IBAN"),
    ("ssn 536-22-1234", "US social security number"),
    ("NI AB 12 34 56 C", "UK national insurance number"),
    ("key sk-proj-Zb3kQ9xW2mT7vL1pR8nY4cF6hJ0dS5aG", "OpenAI API key"),
    ("key sk-ant-api03-Zb3kQ9xW2mT7vL1pR8nY4cF6hJ0dS5aG", "Anthropic API key"),
    ("AKIAZ3MSJV4WWNKWW5FX", "AWS access key id"),
    ("stripe sk_live_51HqLyjWDarjtT1zdp7dcQ8", "Stripe live key"),
    ("token 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", "Hugging Face token"),
    ("ghp_Zb3kQ9xW2mT7vL1pR8nY4cF6hJ0dS5aGzz12", "GitHub token"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI5ODc2NTQzMjEwIn0.kq3Y9Wb1Jm8Zr0v2Xc7Lp4TnQe6Hs5Ud", "JSON Web Token"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0\n",
     "private key"),
]

NOT_FOUND = [
    ("examples: jane.doe@example.com, ops@corp.example, a@b.test, x@host.invalid, me@localhost", "reserved domains"),
    ("_____@gmail.com, your.name@gmail.com, user@company.com, xxx@yyy.com", "placeholders"),
    ("ssh -T git@github.com and git@gitlab.com:group/repo.git", "git remotes"),
    ("someone@host.internal and build@ci.corp and a@b.c0m", "not a real top-level domain"),
    ("at 1712345678901 ms, order 123456789012, id 4000000000000001", "timestamps and ids (no issuer / Luhn)"),
    ("https://twitter.com/x/status/1712345678901234567 and https://u:p@host.com/?m=bob@corp.com", "inside URLs"),
    ("test cards 4111 1111 1111 1111 and 4242424242424242", "documented test cards"),
    ("(415) 555-0132 and 212-555-0199", "the fictional 555-01xx range"),
    ("AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "AWS's documented example keys"),
    ("sk-your-api-key-here-xxxxxxxxxxxxxxxx and sk-proj-XXXXXXXXXXXXXXXXXXXXXXXX", "placeholder keys"),
    ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIy"
     "fQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", "jwt.io's sample token"),
    ("Never print a line like -----BEGIN RSA PRIVATE KEY----- in an answer.", "a key header alone"),
    ("IBAN GB82 WEST 1234 5698 7654 32 (the registry's example), DE44 5001 0517 5407 3249 32 (bad check)", "IBANs"),
    ("SSN 123-45-6789 or 078-05-1120 or 900-12-3456; NI QQ123456C", "example and invalid national ids"),
    ("version 1.2.3.4, 2024-01-15, 10.0.0.1, ISBN 978-3-16-148410-0", "versions, dates, addresses, ISBNs"),
]


@pytest.mark.parametrize(("text", "kind"), FOUND)
def test_found(text: str, kind: str) -> None:
    assert kind in [m.kind for m in find(text)]


@pytest.mark.parametrize(("text", "why"), NOT_FOUND, ids=[w for _, w in NOT_FOUND])
def test_not_found(text: str, why: str) -> None:
    assert [text[m.start:m.end] for m in find(text)] == []


def test_every_value_on_a_line_is_redacted_in_every_snippet_and_format(write) -> None:
    secret_line = '{"card": "4556 7375 8689 9855", "email": "ana.silva@gmail.com", "model": "text-davinci-003"}'
    write("evalkit.yaml", 'lint:\n  forbidden_patterns: [{glob: "data/*", pattern: "card"}]\n')
    write("data/rows.jsonl", secret_line + "\n")
    report = lint(["data"])
    rules = sorted({f.rule for f in report.findings})
    assert rules == ["forbidden-pattern", "model-id", "pii"]
    assert len(report.findings) == 4
    raw = ("4556 7375 8689 9855", "ana.silva@gmail.com", "4556737586899855")
    outputs = [render_lint_json(report), json.dumps(render_lint_sarif(report)), render_lint_github(report)]
    outputs += [f.snippet + f.message for f in report.findings]
    for text in outputs:
        assert not any(value in text for value in raw), text
    assert {f.snippet for f in report.findings} == {
        '{"card": "45************55", "email": "an***************om", "model": "text-davinci-003"}'}


def test_snippets_are_bounded_and_centred_on_the_finding(write) -> None:
    write("data/long.jsonl", "x" * 40_000 + " mail ana.silva@gmail.com " + "y" * 40_000 + "\n")
    (finding,) = lint(["data"]).findings
    assert len(finding.snippet) <= 200
    assert "an***************om" in finding.snippet and "ana.silva" not in finding.snippet
    assert finding.snippet.startswith("…") and finding.snippet.endswith("…")


def test_an_allowlist_file_silences_known_values(write) -> None:
    write("pii-allow.txt", "# public support line\n+1 212 867 5309\nana.silva@gmail.com  # the team's shared inbox\n")
    write("evalkit.yaml", "lint:\n  pii: {allowlist: pii-allow.txt}\n")
    write("prompts/p.md", "Call +1 212 867 5309 or 12128675309, mail ana.silva@gmail.com or ana.souza@gmail.com\n")
    assert [f.message for f in lint(["prompts"]).findings] == ["possible e-mail address (an***************om)"]


def test_a_missing_allowlist_is_one_clear_error(write, capsys: pytest.CaptureFixture[str]) -> None:
    from evalkit.cli import main

    write("evalkit.yaml", "lint:\n  pii: {allowlist: nope.txt}\n")
    write("prompts/p.md", "x\n")
    assert main(["lint", "prompts"]) == 2
    assert capsys.readouterr().err == ("evalkit: error: evalkit.yaml:2: lint.pii.allowlist: expected a readable "
                                       "UTF-8 file, got 'nope.txt' (No such file or directory)\n")


def test_redact_spans_covers_partial_overlaps() -> None:
    text = "abc 4556 7375 8689 9855 def"
    matches = find(text)
    assert redact_spans(text, matches) == "abc 45************55 def"
    assert redact_spans(text[8:], matches, 8) == "*************** def"
