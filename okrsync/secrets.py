"""Secrets from the environment (or `*_FILE` paths), and redaction of every secret read."""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from pathlib import Path

SECRET_HEADER = re.compile(r"auth|cookie|token|secret|key|password", re.IGNORECASE)
"""Header names that hold a secret: they come from OKRSYNC_<SOURCE>_HEADER_<NAME>, never YAML."""

_lock = threading.Lock()
_known: set[str] = set()
MASK = "***"


def env_name(source: str, suffix: str) -> str:
    """`OKRSYNC_<SOURCE>_<SUFFIX>`, source upper-cased with `-` and `.` turned into `_`."""
    stem = re.sub(r"[^A-Za-z0-9]", "_", source).upper()
    return f"OKRSYNC_{stem}_{suffix}"


def read_secret(name: str, environ: dict[str, str] | None = None) -> str | None:
    """Value of env var `name`, else the contents of the file named by `name_FILE`."""
    env = os.environ if environ is None else environ
    value = env.get(name)
    if not value and env.get(f"{name}_FILE"):
        path = Path(env[f"{name}_FILE"])
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise OSError(f"cannot read {name}_FILE={path}: {exc.strerror}") from None
    if value:
        remember(value)
    return value or None


def remember(value: str) -> None:
    """Mark a value as secret so `redact` hides it wherever it would be shown, also as
    written inside JSON (a secret with `"`, `\\` or non-ASCII is escaped there)."""
    if len(value) >= 4:
        with _lock:
            _known.add(value)
            _known.add(json.dumps(value)[1:-1])


def remember_basic(user: str, password: str) -> None:
    """Also hide the base64 `user:password` a Basic Authorization header carries."""
    remember(password)
    remember(base64.b64encode(f"{user}:{password}".encode()).decode())


def redact(text: str) -> str:
    """Replace every known secret in `text` with `***`."""
    with _lock:
        secrets = sorted(_known, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text
