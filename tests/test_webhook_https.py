"""Webhooks over HTTPS against a real TLS receiver on 127.0.0.1: a certificate the system
trusts delivers; one it does not trust never does, and the stored error says why. Also
what a signing secret whose file cannot be read does to a delivery."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from sink_runs import rows, send
from webhook_receiver import receiving

from okrsync.cli.main import main

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (as a subjectAltName, which TLS checks)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
    files = ["-keyout", str(key), "-out", str(cert)]
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        ["openssl", *request, *files, *subject],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def push_once(tmp_path: Path, url: str) -> None:
    (tmp_path / "okrs.yaml").write_text(
        "period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}\n"
        f"sinks: {{portal: {{type: webhook, url: '{url}', timeout: 2}}}}\n"
        "objectives: [{id: o, title: O, key_results: [\n"
        "  {id: api-uptime, source: manual, target: 100, push: [portal]}]}]\n"
    )
    db = ["--config", str(tmp_path / "okrs.yaml"), "--db", str(tmp_path / "x.db")]
    assert main(["checkin", "api-uptime", "42", "--now", "2026-11-02T12:00:00Z", *db]) == 0
    send(tmp_path)


def test_a_trusted_certificate_delivers_over_https(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trusted as the system's CA bundle
    with receiving(tls=(cert, key)) as receiver:
        assert receiver.url.startswith("https://127.0.0.1:")
        push_once(tmp_path, receiver.url)
        assert [s.json["value"] for s in receiver.delivered()] == [42]
    assert [r["state"] for r in rows(tmp_path)] == ["delivered"]


def test_an_untrusted_certificate_is_never_delivered_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "nothing-trusted.pem"))
    with receiving(tls=(cert, key)) as receiver:
        push_once(tmp_path, receiver.url)
        assert receiver.delivered() == []
    [row] = rows(tmp_path)
    assert row["state"] != "delivered" and row["last_status_code"] is None
    assert "certificate" in str(row["last_error"]).lower()


def test_an_unreadable_secret_file_keeps_the_delivery_pending_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`OKRSYNC_<SINK>_SECRET_FILE` naming a file not there (yet): nothing is sent
    unsigned, the delivery stays pending for the next run, and its error names the file."""
    monkeypatch.setenv("OKRSYNC_PORTAL_SECRET_FILE", str(tmp_path / "not-mounted-yet"))
    with receiving() as receiver:
        push_once(tmp_path, receiver.url)
        assert receiver.seen == []
    [row] = rows(tmp_path)
    assert row["state"] == "pending" and "cannot read OKRSYNC_PORTAL_SECRET_FILE" in str(
        row["last_error"]
    )
