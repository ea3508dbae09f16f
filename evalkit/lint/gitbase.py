"""Reads files as they are in a base revision with git, without checking anything out."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from evalkit.errors import ConfigError


def _git(args: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"--base: cannot run git ({exc})") from None


def read_at(ref: str, paths: Sequence[str]) -> dict[str, str | None]:
    """Each path's text at ``ref`` (None when absent there or not text); one ``git cat-file --batch``."""
    verified = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"])
    if verified.returncode != 0:
        if _git(["rev-parse", "--git-dir"]).returncode != 0:
            raise ConfigError(f"--base: expected a git working tree, got {ref!r} outside one")
        raise ConfigError(f"--base: expected a git revision, got {ref!r} (no such commit, branch or tag)")
    commit = verified.stdout.decode().strip()
    prefix = _git(["rev-parse", "--show-prefix"]).stdout.decode().strip()
    request = "".join(f"{commit}:{prefix}{path}\n" for path in paths).encode()
    try:
        output = subprocess.run(["git", "cat-file", "--batch"], input=request, capture_output=True, timeout=300,
                                check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"--base: git cat-file failed ({exc})") from None
    found: dict[str, str | None] = {}
    position = 0
    for path in paths:
        end = output.index(b"\n", position)
        header = output[position:end].split()
        position = end + 1
        if len(header) < 3 or header[1] != b"blob":
            found[path] = None  # "missing": the file is new in this change
            continue
        size = int(header[2])
        blob = output[position:position + size]
        position += size + 1
        try:
            found[path] = blob.decode("utf-8")
        except UnicodeDecodeError:
            found[path] = None
    return found
