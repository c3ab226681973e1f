"""Sinks: where computed progress is pushed (the OKR stores teams already keep).

`sinks: {NAME: {type: webhook|okr-tracker, url: ...}}` at the top level (a union on
`type`), and `push: [NAME, {sink: NAME, id: ...}]` on a KR. Secrets never go here: a
webhook's signing secret is read from `OKRSYNC_<SINK>_SECRET`, an okr-tracker key from
`OKRSYNC_<SINK>_TOKEN` (each also as `_FILE`), like a source's token.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
)

SINK_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
SinkName = Annotated[
    str,
    Field(
        pattern=SINK_NAME_PATTERN,
        max_length=100,
        description="Sink name: letters, digits, '-', '_' (its env vars: OKRSYNC_<NAME>_...).",
    ),
]


_SINK_NAME: TypeAdapter[str] = TypeAdapter(SinkName)


def is_sink_name(name: Any) -> bool:
    """Whether `name` is a valid sink name (what `sinks:` keys and `push:` entries take)."""
    try:
        _SINK_NAME.validate_python(name)
    except ValidationError:
        return False
    return True


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class _HttpSink(_Frozen):
    """What every HTTP sink takes: its URL, a whole-request deadline, attempts, a read cap."""

    latest_only: ClassVar[bool] = False
    """Whether the store keeps only the latest value: then a newer delivery of a KR
    supersedes its older undelivered ones (never sent)."""

    url: str = Field(description="http(s) URL of the sink")
    timeout: float = Field(
        10.0, gt=0, le=300, description="Seconds for the whole request (connect to last byte)"
    )
    max_attempts: int = Field(
        10, ge=1, le=1000, description="Attempts (across runs) before a delivery fails for good"
    )
    max_response_bytes: int = Field(
        65536, ge=1024, le=10_000_000, description="The most of an answer that is read"
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError:
            raise ValueError(f"'{value}' is not an http(s) URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
            raise ValueError(f"'{value}' is not an http(s) URL, e.g. https://okr.example.com/hook")
        if "@" in parts.netloc:
            raise ValueError(
                "credentials in a URL: remove user:password@; a webhook's secret comes from "
                "OKRSYNC_<SINK>_SECRET in the environment"
            )
        return value


class WebhookSink(_HttpSink):
    """POSTs each changed measurement as JSON, with `Idempotency-Key` and, when
    OKRSYNC_<SINK>_SECRET is set, `X-Okrsync-Signature: sha256=<HMAC of the body>`."""

    type: Literal["webhook"]


class OkrTrackerSink(_HttpSink):
    """oslokommune/okr-tracker: `POST {url}/keyres/{id}` `{"progress": <value>}` with the
    `x-api-key` from OKRSYNC_<SINK>_TOKEN and, where set, `okr-client-id` /
    `okr-client-secret` from OKRSYNC_<SINK>_CLIENT_ID / _CLIENT_SECRET. Keeps the latest."""

    latest_only: ClassVar[bool] = True
    type: Literal["okr-tracker"]


class JiraIssueSink(_HttpSink):
    """Mirror into the Jira issue of a KR: sets a number field (`PUT /rest/api/2/issue/KEY`)
    and/or adds a comment. Credentials as the jira source: OKRSYNC_<SINK>_USER + _TOKEN
    (Cloud, basic) or OKRSYNC_<SINK>_TOKEN alone (Data Center PAT, bearer)."""

    latest_only: ClassVar[bool] = True
    type: Literal["jira-issue"]


class GithubIssueSink(_HttpSink):
    """Mirror into a GitHub tracking issue: one managed progress comment per KR, edited in
    place. Token from OKRSYNC_<SINK>_TOKEN; `url` is the API base (GitHub Enterprise:
    https://HOST/api/v3)."""

    latest_only: ClassVar[bool] = True
    type: Literal["github-issue"]
    repo: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="owner/name")
    url: str = Field("https://api.github.com", description="API base URL")


AnySink = WebhookSink | OkrTrackerSink | JiraIssueSink | GithubIssueSink
Sink = Annotated[AnySink, Field(discriminator="type")]
SINK_MODELS = (WebhookSink, OkrTrackerSink, JiraIssueSink, GithubIssueSink)
SINK_TYPES = ("webhook", "okr-tracker", "jira-issue", "github-issue")


ISSUE = "expected an issue key (OKR-12) or number (42)"


def _issue_form(value: Any) -> str | None:
    """An issue is a key (text) or a number; YAML's true/false or 4.2 is neither."""
    if isinstance(value, str):
        return "key"
    if isinstance(value, int) and not isinstance(value, bool):
        return "number"
    return None


Issue = Annotated[
    Annotated[str, Tag("key")] | Annotated[int, Tag("number")],
    Discriminator(_issue_form, custom_error_type="issue_form", custom_error_message=ISSUE),
]

BLANK_ID = 'is empty: write the KR\'s id in that store, e.g. id: "kr-8f3a"'


class PushTarget(_Frozen):
    """One sink a KR is pushed to, with the KR's id there where that store needs one."""

    sink: SinkName
    id: str | None = Field(
        None, min_length=1, max_length=200, description="The KR's id in that store"
    )
    issue: Issue | None = Field(
        None, description="jira-issue: the issue key (OKR-12); github-issue: the number (42)"
    )
    field: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]{1,100}$",
        description="jira-issue: the number field set to the value (customfield_10050)",
    )
    comment: bool | None = Field(None, description="jira-issue: add a comment per value")

    @field_validator("id", mode="before")
    @classmethod
    def _id_not_blank(cls, value: Any) -> Any:
        # before the length check, so "" and "  " get the same message
        if isinstance(value, str) and not value.strip():
            raise ValueError(BLANK_ID)
        return value

    def mirror(self) -> dict[str, Any]:
        """The mirror keys that are set (they travel in the delivery's payload)."""
        keys = {"issue": self.issue, "field": self.field, "comment": self.comment}
        return {k: v for k, v in keys.items() if v is not None}


def target_problem(sink_type: str, target: PushTarget) -> str | None:
    """What a push target lacks for its sink's type, or None."""
    name = target.sink
    keys = set(target.mirror())
    takes = {"jira-issue": {"issue", "field", "comment"}, "github-issue": {"issue"}}
    if keys - takes.get(sink_type, set()):
        shown = ", ".join(f"`{k}`" for k in sorted(keys - takes.get(sink_type, set())))
        return (
            f"{sink_type} sink '{name}' takes no {shown} (jira-issue takes `issue`, `field`, "
            "`comment`; github-issue takes `issue`)"
        )
    if sink_type == "okr-tracker" and not target.id:
        return (
            f"okr-tracker sink '{name}' needs the KR's id there: write "
            f'{{sink: {name}, id: "..."}}'
        )
    if sink_type == "jira-issue":
        if not isinstance(target.issue, str) or not re.fullmatch(
            r"[A-Z][A-Z0-9_]*-[0-9]+", target.issue
        ):
            return (
                f"jira-issue sink '{name}' needs the issue key: write "
                f"{{sink: {name}, issue: OKR-12, field: customfield_10050}}"
            )
        if not target.field and not target.comment:
            return (
                f"jira-issue sink '{name}' needs `field: customfield_NNNNN` and/or `comment: true`"
            )
    if sink_type == "github-issue" and (
        not isinstance(target.issue, int) or isinstance(target.issue, bool) or target.issue < 1
    ):
        return (
            f"github-issue sink '{name}' needs the issue number: write {{sink: {name}, issue: 42}}"
        )
    return None


PUSH_ENTRY = "expected a sink name or {sink: NAME, id: ...}"
PUSH_TAGS = ("name", "target")
"""The tags of Push's two forms: pydantic puts them into an error's loc after the index."""


def _push_form(value: Any) -> str | None:
    """Which form a `push:` entry is written in: text is a name, a mapping a target. Only
    that form is validated, so an error speaks of what was written (not of both forms);
    anything else fails as one `push_entry` error."""
    if isinstance(value, str):
        return "name"
    if isinstance(value, dict | PushTarget):
        return "target"
    return None


Push = Annotated[
    Annotated[SinkName, Tag("name")] | Annotated[PushTarget, Tag("target")],
    Discriminator(_push_form, custom_error_type="push_entry", custom_error_message=PUSH_ENTRY),
]


def push_targets(push: list[Push]) -> list[PushTarget]:
    """`push:` items as targets: a bare name is `{sink: NAME}`."""
    return [p if isinstance(p, PushTarget) else PushTarget(sink=p) for p in push]
