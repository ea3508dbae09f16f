"""Reads files as they are in a base revision with git, without checking anything out.

Used by ``evalkit lint --base`` and ``evalkit ab --baseline-ref``; ``option`` names the flag in errors, and
``cwd`` is the folder git runs in (paths are relative to it; the working directory by default).
"""

from __future__ import annotations

import posixpath
import subprocess
from collections.abc import Sequence
from pathlib import Path

from evalkit.errors import ConfigError


def _git(args: Sequence[str], option: str = "--base", cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], capture_output=True, timeout=60, check=False, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"{option}: cannot run git ({exc})") from None


def verify(ref: str, option: str = "--base", cwd: Path | None = None) -> str:
    """The commit ``ref`` names; a one-line error when it names none."""
    verified = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], option, cwd)
    if verified.returncode != 0:
        if _git(["rev-parse", "--git-dir"], option, cwd).returncode != 0:
            raise ConfigError(f"{option}: expected a git working tree, got {ref!r} outside one")
        raise ConfigError(f"{option}: expected a git revision, got {ref!r} (no such commit, branch or tag)")
    return verified.stdout.decode().strip()


def read_at(ref: str, paths: Sequence[str], option: str = "--base", cwd: Path | None = None) -> dict[str, str | None]:
    """Each path's text at ``ref`` (None when absent there or not text); one ``git cat-file --batch``.

    Paths are relative to ``cwd`` and may climb out of it (``../prompts/p.md``) within the repository.
    """
    if not paths:
        return {}
    commit = verify(ref, option, cwd)
    prefix = _git(["rev-parse", "--show-prefix"], option, cwd).stdout.decode().strip()
    # One listing of the base tree gives every blob id; asking cat-file for "<commit>:<path>" instead would
    # re-read the folder's tree object for each path (quadratic in a folder of 10,000 prompts).
    listing = _git(["ls-tree", "-r", "-z", "--full-tree", commit], option, cwd)
    if listing.returncode != 0:
        raise ConfigError(f"{option}: git ls-tree {ref} failed: {listing.stderr.decode(errors='replace').strip()}")
    blobs: dict[str, str] = {}
    for entry in listing.stdout.split(b"\0"):
        if not entry:
            continue
        meta, _, name = entry.partition(b"\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == b"blob":
            blobs[name.decode("utf-8", "surrogateescape")] = parts[2].decode()
    wanted = [(path, blobs.get(posixpath.normpath(prefix + path))) for path in paths]
    request = "".join(f"{oid}\n" for _, oid in wanted if oid).encode()
    try:
        output = subprocess.run(["git", "cat-file", "--batch"], input=request, capture_output=True, timeout=300,
                                check=True, cwd=cwd).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"{option}: git cat-file failed ({exc})") from None
    found: dict[str, str | None] = {}
    position = 0
    for path, oid in wanted:
        if oid is None:
            found[path] = None  # new in this change
            continue
        end = output.index(b"\n", position)
        header = output[position:end].split()
        position = end + 1
        if len(header) < 3 or header[1] != b"blob":
            found[path] = None
            continue
        size = int(header[2])
        blob = output[position:position + size]
        position += size + 1
        try:
            found[path] = blob.decode("utf-8")
        except UnicodeDecodeError:
            found[path] = None
    return found
