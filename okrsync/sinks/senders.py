"""Sink type -> sender: the one table delivery.py dispatches on. A sender takes the sink's
name (for its env vars), its config, the outbox payload and the idempotency key, and
returns the HTTP status of a delivered attempt or raises transport.DeliveryError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from okrsync.config.sinks import AnySink
from okrsync.sinks import github_issue, jira_issue, okr_tracker, webhook

Sender = Callable[[str, Any, bytes, str], int]

SENDERS: dict[str, Sender] = {
    "webhook": webhook.send,
    "okr-tracker": okr_tracker.send,
    "jira-issue": jira_issue.send,
    "github-issue": github_issue.send,
}


def send(name: str, sink: AnySink, body: bytes, key: str) -> int:
    """Deliver one payload with the sender of the sink's type."""
    return SENDERS[sink.type](name, sink, body, key)
