"""Secrets: env and *_FILE lookup, and redaction of every form a secret is sent in."""

from __future__ import annotations

import base64
from pathlib import Path

from okrsync.secrets import env_name, read_secret, redact, remember, remember_basic


def test_env_name_upper_cases_and_replaces_dashes() -> None:
    """Source `metrics-eu` reads OKRSYNC_METRICS_EU_TOKEN."""
    assert env_name("metrics-eu", "TOKEN") == "OKRSYNC_METRICS_EU_TOKEN"


def test_file_variant_is_read_and_redacted(tmp_path: Path) -> None:
    """`NAME_FILE` names a file whose stripped contents are the secret, redacted afterwards."""
    (tmp_path / "t").write_text("file-secret-42\n")
    env = {"OKRSYNC_X_TOKEN_FILE": str(tmp_path / "t")}
    assert read_secret("OKRSYNC_X_TOKEN", env) == "file-secret-42"
    assert redact("token=file-secret-42") == "token=***"


def test_basic_auth_header_form_is_redacted() -> None:
    """The base64 user:password of a Basic header is hidden, not only the password."""
    remember_basic("bob", "Pass-w0rd-9876")
    header = "Basic " + base64.b64encode(b"bob:Pass-w0rd-9876").decode()
    assert redact(f"server echoed {header}") == "server echoed Basic ***"


def test_a_secret_is_hidden_inside_json_too() -> None:
    """Payloads and stored answers are JSON text, where `"`, `\\` and non-ASCII are escaped:
    the escaped form of a secret is hidden as well as the plain one."""
    import json

    secret = 'pa"ss\\wörd-9f3a'
    remember(secret)
    text = json.dumps({"error": f"401 for token {secret}"})
    assert "***" in redact(text) and "ss" not in redact(text).split("token")[1]
    assert redact(secret) == "***"
