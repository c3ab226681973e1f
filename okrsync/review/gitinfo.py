"""The git commit a config directory is at, for runs to record (`runs.config_commit`).

Bounded: each git call has a deadline and its output is capped; no git, no repository, a
timeout or any other failure is simply "no commit" (None), never an error of the run.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

TIMEOUT = 5.0
"""Seconds each git call may take."""
MAX_OUTPUT = 4096
"""Characters of a git answer looked at; a sha is 40 (SHA-1) or 64 (SHA-256)."""
_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


def _git(where: Path, *args: str, timeout: float) -> str | None:
    """git's stdout (cut to MAX_OUTPUT), or None when it fails, is missing or times out."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(
            # fsmonitor off: a repository's own config must not make okrsync run a command
            ["git", "-c", "core.fsmonitor=false", "-C", str(where), *args],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            env=env,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout[:MAX_OUTPUT].decode("utf-8", "replace")


def config_commit(config: Path | str, *, timeout: float = TIMEOUT) -> str | None:
    """The commit (full sha) of HEAD in the repository holding `config` (a file or a
    directory), with `-dirty` appended when the config's own files (the file, or the
    directory's *.yaml / *.yml) differ from it: modified, staged, deleted or untracked,
    ignored files aside. None outside a git repository."""
    path = Path(config).absolute()
    where = path if path.is_dir() else path.parent
    if not where.is_dir():
        return None
    head = _git(where, "rev-parse", "--verify", "--quiet", "HEAD", timeout=timeout)
    sha = (head or "").strip()
    if not _SHA.fullmatch(sha):
        return None
    specs = [":(glob)*.yaml", ":(glob)*.yml"] if path.is_dir() else [path.name]
    changes = _git(where, "status", "--porcelain", "--", *specs, timeout=timeout)
    if changes is None:
        return None
    return f"{sha}-dirty" if changes.strip() else sha


def short(commit: str | None) -> str | None:
    """`1a2b3c4` (or `1a2b3c4-dirty`) for showing; None stays None."""
    if commit is None:
        return None
    sha, dirty, _ = commit.partition("-dirty")
    return sha[:7] + ("-dirty" if dirty else "")
