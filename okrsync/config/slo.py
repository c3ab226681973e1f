"""The `slo:` block of a key result: an SLO as good (or error) events over all events.

Its queries are the KR's source's, with `{window}` for the window they count over; the
defaults are the SRE workbook's multiwindow burn-rate pairs.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from okrsync.config.duration import parse_duration

PERIOD = "period"
WINDOW = "{window}"
SloQuery = str | dict[str, Any]
"""A query of the KR's source: the bare string of its main field (PromQL, JQL, a search)
or a mapping of its query fields (`{jql: ..., sum: ...}`)."""


WINDOW_PATTERN = r"^([0-9]+[smhdw])+$"
LONGEST = 3660 * 86400
"""The longest window (10 years): Prometheus refuses ranges far past it."""


def seconds(duration: str) -> float:
    """Seconds of a window as written (`5m`, `28d`)."""
    return parse_duration(duration)


def window(value: str) -> str:
    """`value` when Prometheus reads it as a range (`28d`, `1h30m`: whole numbers, no
    spaces, at most 10 years), as it is rendered into `{window}`; else ValueError."""
    if not re.match(WINDOW_PATTERN, value):
        raise ValueError(
            f"'{value}' is not a window Prometheus reads: write whole numbers with s, m, h, "
            "d or w and no spaces, e.g. 5m, 1h30m, 28d"
        )
    if not 1 <= seconds(value) <= LONGEST:
        raise ValueError(f"window '{value}' is not between 1s and {LONGEST // 86400}d")
    return value


Window = Annotated[str, AfterValidator(window), Field(examples=["1h", "5m", "28d"])]


class BurnAlert(BaseModel):
    """A multiwindow burn-rate alert: firing when both windows burn at `factor` or faster."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    long: Window
    short: Window
    factor: float = Field(gt=0, description="Burn rate both windows reach for the alert to fire")

    @model_validator(mode="after")
    def _short_is_shorter(self) -> BurnAlert:
        if seconds(self.short) >= seconds(self.long):
            raise ValueError(
                f"short window {self.short} is not shorter than long window {self.long}"
            )
        return self


DEFAULT_BURN_ALERTS = (
    BurnAlert(long="1h", short="5m", factor=14.4),
    BurnAlert(long="6h", short="30m", factor=6),
)


class Slo(BaseModel):
    """good/total (or errors/total) events of the KR's source; the SLI is their ratio."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    sloth: str | None = Field(
        None,
        description="A Sloth prometheus/v1 file and SLO name, `slos/checkout.yaml#name`, "
        "read for the queries and objective (relative to this config file)",
    )
    good: SloQuery | None = Field(None, description="Good events in `{window}`")
    errors: SloQuery | None = Field(None, description="Bad events in `{window}` (instead of good)")
    total: SloQuery | None = Field(None, description="All events in `{window}`")
    objective: float | None = Field(
        None, strict=True, description="Percent of good events, e.g. 99.9"
    )
    burn_alerts: tuple[BurnAlert, ...] = Field(
        DEFAULT_BURN_ALERTS,
        description="Multiwindow burn-rate pairs (default: 1h/5m at 14.4, 6h/30m at 6)",
    )
    window: str = Field(
        PERIOD,
        description="`period` (the OKR period so far) or a rolling window such as 28d",
        examples=["period", "28d"],
    )

    @field_validator("objective")
    @classmethod
    def _percent(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value < 100:
            raise ValueError(f"objective {value:g} is not a percent strictly between 0 and 100")
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value: str, info: ValidationInfo) -> str:
        if value == PERIOD:
            return value
        try:
            length = seconds(window(value))
        except ValueError as exc:
            raise ValueError(f"{exc}; or `period`") from None
        alerts = info.data.get("burn_alerts") or ()
        longest = max(alerts, key=lambda a: seconds(a.long), default=None)
        if longest is not None and length < seconds(longest.long):
            raise ValueError(
                f"window {value} is shorter than the longest burn window ({longest.long})"
            )
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _events(cls, data: Any, handler: ModelWrapValidatorHandler[Slo]) -> Slo:
        """Which events are counted is checked even when a field is wrong too, so
        `validate` lists every problem of the block at once."""
        problem = _events_problem(data) if isinstance(data, dict) else None
        try:
            slo = handler(data)
        except ValidationError as exc:
            if problem is None:
                raise
            errors: list[Any] = [
                {"type": e["type"], "loc": e["loc"], "input": e["input"], "ctx": e.get("ctx", {})}
                for e in exc.errors()
            ]
            raise ValidationError.from_exception_data(
                exc.title, [*errors, _error(problem, data)]
            ) from None
        if problem is not None:
            raise ValidationError.from_exception_data(cls.__name__, [_error(problem, data)])
        return slo

    @property
    def counts_errors(self) -> bool:
        """The SLO counts bad events (`errors:`), so good = total - errors."""
        return self.errors is not None

    @property
    def events(self) -> SloQuery:
        """The good or error events query, whichever was given."""
        query = self.errors if self.errors is not None else self.good
        assert query is not None
        return query

    @property
    def rolling(self) -> bool:
        return self.window != PERIOD

    def burn_windows(self) -> list[str]:
        """Each distinct burn window once, shortest first."""
        windows = {w for a in self.burn_alerts for w in (a.long, a.short)}
        return sorted(windows, key=lambda w: (seconds(w), w))


def _events_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with the events a raw `slo:` block counts, if anything."""
    if data.get("sloth") is not None:
        return None  # the loader fills the queries and objective from the Sloth file
    if (data.get("good") is None) == (data.get("errors") is None):
        both = "not both" if data.get("good") is not None else "one is required"
        return f"set `good` or `errors` ({both})"
    if data.get("total") is None:
        return "`total` is required: the count of all events"
    if data.get("objective") is None:
        return "`objective` is required: the percent of good events, e.g. 99.9"
    events = data.get("good") if data.get("good") is not None else data.get("errors")
    if (WINDOW in str(events)) != (WINDOW in str(data["total"])):
        return (
            "use {window} in both queries or in neither: good and total must count over "
            "the same window"
        )
    return None


def _error(text: str, data: Any) -> Any:
    return {"type": PydanticCustomError("value_error", text), "loc": (), "input": data}


def fields_of(query: SloQuery, main_key: str | None) -> dict[str, Any]:
    """An SLO query as its connector's query fields: a bare string fills `main_key`."""
    if isinstance(query, dict):
        return dict(query)
    if main_key is None:
        raise ValueError("this source takes no bare query string: write its query fields")
    return {main_key: query}


def queries(slo: Slo) -> list[tuple[str, SloQuery]]:
    """(`good` or `errors`, query) and (`total`, query), as configured."""
    if slo.sloth is not None and slo.total is None:
        return []  # an unread Sloth reference: reported where it is written
    return [("errors" if slo.counts_errors else "good", slo.events), ("total", _total(slo))]


def _total(slo: Slo) -> SloQuery:
    assert slo.total is not None
    return slo.total
