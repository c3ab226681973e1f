"""Delivery to a real loopback okr-tracker API: the request it takes, its answers sorted
into delivered / permanent / retried, the keys kept out of the store, and a newer value
superseding older undelivered ones (the webhook still gets every value)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from clock import running_period
from okr_tracker_receiver import API_KEY, CLIENT_ID, CLIENT_SECRET, Tracker, tracking
from sink_runs import checkin, rows, send
from webhook_receiver import receiving

from okrsync.cli.main import main


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKRSYNC_TRACKER_TOKEN", API_KEY)
    monkeypatch.setenv("OKRSYNC_TRACKER_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("OKRSYNC_TRACKER_CLIENT_SECRET", CLIENT_SECRET)


def setup(tmp_path: Path, url: str, kr_id: str = "kr-8f3a", hook: str | None = None) -> None:
    push = f'{{sink: tracker, id: "{kr_id}"}}' + (", portal" if hook else "")
    lines = [
        running_period("2026-Q4").rstrip(),
        "sinks:",
        f"  tracker: {{type: okr-tracker, url: '{url}', timeout: 2, max_attempts: 5}}",
        *([f"  portal: {{type: webhook, url: '{hook}', timeout: 2}}"] if hook else []),
        "objectives:",
        "  - id: o",
        "    title: O",
        "    key_results:",
        f"      - {{id: api-uptime, source: manual, start: 0, target: 100, push: [{push}]}}",
    ]
    (tmp_path / "okrs.yaml").write_text("\n".join(lines) + "\n")


def test_the_value_is_posted_to_keyres_with_the_keys_as_headers(tmp_path: Path) -> None:
    """`POST {url}/keyres/{id}` `{"progress": value}` (the value, not the fraction) with
    x-api-key, okr-client-id and okr-client-secret; okr-tracker's 200 text is delivered."""
    with tracking() as tracker:
        setup(tmp_path, tracker.url)
        checkin(tmp_path, 42.5)
        report = send(tmp_path)
    [seen] = tracker.seen
    assert seen.path == "/api/keyres/kr-8f3a" and seen.json == {"progress": 42.5}
    assert seen.headers["x-api-key"] == API_KEY
    assert (seen.headers["okr-client-id"], seen.headers["okr-client-secret"]) == (
        CLIENT_ID,
        CLIENT_SECRET,
    )
    assert tracker.values == {"kr-8f3a": [42.5]} and report.sent == 1
    [row] = rows(tmp_path)
    assert (row["state"], row["last_status_code"], row["last_error"]) == ("delivered", 200, None)


def test_the_keys_are_never_stored(tmp_path: Path) -> None:
    """No credential reaches any column of the store, payload included."""
    with tracking() as tracker:
        setup(tmp_path, tracker.url)
        checkin(tmp_path, 3)
        send(tmp_path)
    assert tracker.values == {"kr-8f3a": [3.0]}
    dump = "\n".join(sqlite3.connect(tmp_path / "x.db").iterdump())
    for secret in (API_KEY, CLIENT_SECRET):
        assert secret not in dump


@pytest.mark.parametrize(
    ("kr_id", "value", "code", "error"),
    [
        ("kr-8f3a", -3, 400, 'HTTP 400: {"message": "Invalid request data", "errors": {"progress"'),
        ("kr-nope", 5, 404, "HTTP 404: Could not find KPI with ID: kr-nope"),
    ],
    ids=["negative-value-400", "unknown-id-404"],
)
def test_a_400_or_404_fails_for_good_with_its_message(
    tmp_path: Path, kr_id: str, value: float, code: int, error: str
) -> None:
    """okr-tracker's rejection is not retried: the delivery failed, with the status and the
    start of its answer."""
    with tracking() as tracker:
        setup(tmp_path, tracker.url, kr_id=kr_id)
        checkin(tmp_path, value)
        report = send(tmp_path)
    assert len(tracker.seen) == 1 and report.failed == 1
    [row] = rows(tmp_path)
    assert (row["state"], row["attempts"], row["last_status_code"]) == ("failed", 1, code)
    assert str(row["last_error"]).startswith(error)


def test_a_wrong_client_secret_fails_for_good_without_showing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 401 is permanent; the secret okrsync sent appears nowhere in the stored error."""
    monkeypatch.setenv("OKRSYNC_TRACKER_CLIENT_SECRET", "not-the-secret-42")
    with tracking() as tracker:
        setup(tmp_path, tracker.url)
        checkin(tmp_path, 5)
        send(tmp_path)
    [row] = rows(tmp_path)
    assert (row["state"], row["last_status_code"]) == ("failed", 401)
    assert "okrsync-client" not in str(row["last_error"])  # the client id is read as a secret


def test_429_and_503_are_retried_until_delivered(tmp_path: Path) -> None:
    """okr-tracker's rate limiter (429 with Retry-After) and a 503 are tried again."""
    with tracking() as tracker:
        tracker.script = ["429", "503"]
        setup(tmp_path, tracker.url)
        checkin(tmp_path, 7)
        send(tmp_path)
    assert [s.answered for s in tracker.seen] == [429, 503, 200]
    [row] = rows(tmp_path)
    assert (row["state"], row["attempts"]) == ("delivered", 3)


def _down_then_up(tmp_path: Path, tracker: Tracker) -> None:
    tracker.down = True
    for value in (1, 2):
        checkin(tmp_path, value)
        send(tmp_path)
    checkin(tmp_path, 3)
    tracker.down = False
    time.sleep(0.1)  # the backoff the superseded one was waiting out (FAST: <= 0.05 s)
    send(tmp_path)


def test_only_the_latest_value_arrives_after_the_tracker_was_down(tmp_path: Path) -> None:
    """Three values enqueued while okr-tracker is down: the older undelivered ones are
    superseded (never sent) and only the latest arrives once it is up, once."""
    with tracking() as tracker:
        setup(tmp_path, tracker.url)
        _down_then_up(tmp_path, tracker)
        send(tmp_path)  # nothing left to send
    assert tracker.values == {"kr-8f3a": [3.0]}
    assert [r["state"] for r in rows(tmp_path)] == ["superseded", "superseded", "delivered"]


def test_values_enqueued_before_any_run_send_only_the_latest(tmp_path: Path) -> None:
    """Three check-ins with no delivery step between them: one request, the last value."""
    with tracking() as tracker:
        setup(tmp_path, tracker.url)
        for value in (10, 20, 30):
            checkin(tmp_path, value)
        assert send(tmp_path).sent == 1
    assert [s.json for s in tracker.seen] == [{"progress": 30}]


def test_the_webhook_still_gets_every_value(tmp_path: Path) -> None:
    """Superseding is per sink: a webhook on the same KR keeps every value, in order."""
    with tracking() as tracker, receiving() as hook:
        setup(tmp_path, tracker.url, hook=hook.url)
        for value in (1, 2, 3):
            checkin(tmp_path, value)
        send(tmp_path)
    assert [s.json["value"] for s in hook.delivered()] == [1, 2, 3]
    assert tracker.values == {"kr-8f3a": [3.0]}


def test_missing_credentials_fail_with_the_env_vars_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without any key nothing is sent; the error names OKRSYNC_TRACKER_TOKEN."""
    for name in ("TOKEN", "CLIENT_ID", "CLIENT_SECRET"):
        monkeypatch.delenv(f"OKRSYNC_TRACKER_{name}")
    with tracking() as tracker:
        setup(tmp_path, tracker.url)
        checkin(tmp_path, 5)
        send(tmp_path)
    assert tracker.seen == []
    [row] = rows(tmp_path)
    assert row["state"] == "failed" and "OKRSYNC_TRACKER_TOKEN" in str(row["last_error"])


def test_a_redirect_is_not_followed(tmp_path: Path) -> None:
    """A 3xx is a permanent failure: the key is never sent on to another host."""
    with receiving(["301"]) as other:
        setup(tmp_path, other.url)
        checkin(tmp_path, 5)
        send(tmp_path)
    assert len(other.seen) == 1
    [row] = rows(tmp_path)
    assert row["last_status_code"] == 301 and "redirects are not followed" in str(row["last_error"])


def test_a_newer_value_keeps_the_retry_after_of_the_one_it_supersedes(tmp_path: Path) -> None:
    """After a 429 with Retry-After: 120, a newer value supersedes the held one but still
    waits: nothing is sent before the tracker said."""
    with tracking() as tracker:
        tracker.script = ["429:120"]
        setup(tmp_path, tracker.url)
        checkin(tmp_path, 1)
        send(tmp_path)
        checkin(tmp_path, 2)
        send(tmp_path)
    assert len(tracker.seen) == 1
    held, newer = rows(tmp_path)
    assert held["state"] == "superseded" and newer["state"] == "pending"
    assert newer["next_attempt_at"] is not None


def test_a_requeued_old_value_never_overwrites_a_newer_one(tmp_path: Path) -> None:
    """A rejected -3, then 5 delivered, then `deliveries retry --all`: the -3 is superseded
    by the delivered 5 and not sent again."""
    db = ["--config", str(tmp_path / "okrs.yaml"), "--db", str(tmp_path / "x.db")]
    with tracking() as tracker:
        setup(tmp_path, tracker.url)
        checkin(tmp_path, -3)
        send(tmp_path)
        checkin(tmp_path, 5)
        send(tmp_path)
        assert main(["deliveries", "retry", "--all", *db]) == 0
        send(tmp_path)
    assert [s.json for s in tracker.seen] == [{"progress": -3}, {"progress": 5}]
    assert [r["state"] for r in rows(tmp_path)] == ["superseded", "delivered"]
