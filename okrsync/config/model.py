"""The config's data model (format v1): frozen pydantic models that reject unknown keys.

`okrsync schema` is generated from these, so editors complete and check the YAML.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from okrsync.config import cron, formula
from okrsync.config.duration import PATTERN as DURATION_PATTERN
from okrsync.config.duration import parse_duration
from okrsync.config.sinks import Push, Sink, SinkName
from okrsync.config.slo import Slo

Id = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
        max_length=100,
        description="Stable id: letters, digits, '-', '_', '.', ':'.",
    ),
]
Duration = Annotated[str, Field(pattern=DURATION_PATTERN, examples=["30s", "5m", "1h", "1d"])]
MANUAL = "manual"
FORMULA_NO_QUERY = "a formula KR takes its queries from `inputs`, not `source`/query fields"
SLO_NO_QUERY = "an SLO KR takes its queries from `slo:` (good or errors, and total)"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Period(Frozen):
    """The OKR period: whole days, `end` included, in `timezone` (default UTC)."""

    name: str
    start: date
    end: date
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone '{value}' (use an IANA name such as Europe/Berlin)"
            ) from None
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    @functools.cached_property  # read for every status judged: computed once
    def starts_at(self) -> datetime:
        """First instant of the period, in UTC."""
        return datetime.combine(self.start, time(), ZoneInfo(self.timezone)).astimezone(UTC)

    @functools.cached_property
    def ends_at(self) -> datetime:
        """First instant after the period (the end date is included), in UTC."""
        day_after = self.end + timedelta(days=1)
        return datetime.combine(day_after, time(), ZoneInfo(self.timezone)).astimezone(UTC)


class Thresholds(Frozen):
    """How far below expected progress a KR may be and still be on track / at risk."""

    on_track: float = Field(0.10, ge=0, le=1)
    at_risk: float = Field(0.25, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.at_risk < self.on_track:
            raise ValueError("at_risk must be at least on_track")
        return self


Kind = Literal["aspirational", "committed"]
PREVIOUS = "previous"


class AspirationalBands(Frozen):
    """Lowest scores of the aspirational grades; below `fair` is `poor`."""

    good: float = Field(0.7, ge=0, le=1)
    fair: float = Field(0.4, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> AspirationalBands:
        if self.fair > self.good:
            raise ValueError("fair must be at most good")
        return self


class CommittedBands(Frozen):
    """Lowest score of a `met` committed KR; below it is `missed`."""

    met: float = Field(1.0, ge=0, le=1)


class Grading(Frozen):
    """Score bands of each kind of KR, applied when a period is graded."""

    aspirational: AspirationalBands = AspirationalBands()
    committed: CommittedBands = CommittedBands()


class Defaults(Frozen):
    """Settings every KR inherits unless it says otherwise."""

    every: Duration = "1h"
    thresholds: Thresholds = Thresholds()
    kind: Kind = Field("aspirational", description="Committed KRs are expected to reach 1.0.")
    grading: Grading = Grading()
    stale_after: float = Field(
        3.0, gt=0, description="A value older than this many intervals is stale."
    )
    push_unchanged: bool = Field(False, description="Push every measurement, not only changes.")
    backfill: bool = Field(
        False,
        description="The daemon backfills a KR it sees for the first time from the period "
        "start at 1d, in the background (KRs already backfilled in this period are not).",
    )


class Measure(BaseModel):
    """Where a number comes from: a source, and the query keys its connector takes.

    The query keys are whatever else the mapping holds (`model_extra`): each connector
    declares its own, and the loader checks them with that connector's query model.
    """

    model_config = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False)

    source: str | None = None

    def query_fields(self) -> dict[str, Any]:
        """The connector's part of this measure: every query key that is set."""
        return {k: v for k, v in (self.model_extra or {}).items() if v is not None}


def _target_optional(schema: dict[str, Any]) -> None:
    """`target` may be left out of an SLO KR (it defaults to the objective), of no other."""
    schema["required"] = [k for k in schema.get("required", []) if k != "target"]
    schema["anyOf"] = [{"required": ["target"]}, {"required": ["slo"]}]


class KeyResult(Measure):
    """One key result: how it is measured, where it starts and what it aims for."""

    model_config = ConfigDict(
        frozen=True, extra="allow", allow_inf_nan=False, json_schema_extra=_target_optional
    )

    id: Id
    title: str | None = None
    description: str | None = None
    owner: str | None = None
    formula: str | None = Field(
        None, description="Arithmetic over `inputs`, e.g. closed / total * 100"
    )
    inputs: dict[str, Measure] = Field(default_factory=dict)
    slo: Slo | None = Field(
        None, description="Measured as an SLO: good (or errors) over total events of `source`"
    )
    start: float | Literal["previous"] = Field(
        0.0, description="Baseline; `previous`: the KR's final value in the previous period."
    )
    target: float = Field(description="The value aimed for (an SLO KR's default: its objective)")
    kind: Kind | None = Field(None, description="aspirational or committed (default: inherited)")
    unit: str | None = None
    weight: float = Field(1, ge=0)
    every: Duration | None = None
    cron: str | None = Field(None, description="Cron schedule (daemon), instead of `every`")
    push: list[Push] = Field(
        default_factory=list, description="Sinks this KR's progress is pushed to"
    )
    push_unchanged: bool | None = Field(
        None, description="Push every measurement, not only changes (default: defaults')"
    )
    backfill: bool | None = Field(
        None, description="Backfill in the daemon when first seen (default: defaults')"
    )

    @model_validator(mode="before")
    @classmethod
    def _slo_target(cls, data: Any) -> Any:
        if isinstance(data, dict) and "target" not in data and isinstance(data.get("slo"), dict):
            objective = data["slo"].get("objective")
            if isinstance(objective, int | float) and not isinstance(objective, bool):
                return {**data, "target": objective}
        return data

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                cron.parse(value)
            except cron.CronError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("formula")
    @classmethod
    def _arithmetic(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                formula.parse(value)
            except formula.FormulaError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> KeyResult:
        if self.start != PREVIOUS and self.start == self.target:
            raise ValueError(f"start and target are both {self.target:g}: progress is undefined")
        if self.slo is not None:
            if self.formula is not None:
                raise ValueError("set `slo` or `formula`, not both")
            if self.source is None or self.source == MANUAL:
                raise ValueError("an SLO KR needs the `source` its good and total queries ask")
        if self.formula is None and self.source is None:
            raise ValueError("needs a `source` (or `source: manual`) or a `formula` with `inputs`")
        if self.formula is not None:
            if self.source is not None:
                raise ValueError(FORMULA_NO_QUERY)
            used = formula.names(formula.parse(self.formula))
            missing = sorted(used - set(self.inputs))
            if missing:
                raise ValueError(f"formula uses undefined input(s): {', '.join(missing)}")
        elif self.inputs:
            raise ValueError("`inputs` only make sense with a `formula`")
        if self.every is not None:
            parse_duration(self.every)
            if self.cron is not None:
                raise ValueError("set `every` or `cron`, not both")
        return self

    @property
    def is_manual(self) -> bool:
        return self.source == MANUAL

    @property
    def start_from_previous(self) -> bool:
        return self.start == PREVIOUS


class Objective(Frozen):
    """An objective: its key results and, for cascading OKRs, the id of its parent."""

    id: Id
    title: str
    description: str | None = None
    owner: str | None = None
    parent: str | None = None
    weight: float = Field(1, ge=0)
    kind: Kind | None = Field(None, description="Default kind of its KRs, and its own grade's")
    key_results: list[KeyResult] = Field(default_factory=list)


class ConfigFile(Frozen):
    """One YAML file; a config directory's files are merged (objectives may be split)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
        populate_by_name=True,
        title="okrsync config",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    schema_ref: str | None = Field(
        None, alias="$schema", description="Optional: the JSON Schema this file follows."
    )
    version: Literal[1] = 1
    period: Period | None = None
    defaults: Defaults | None = None
    sources: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Named connector instances; checked by their models."
    )
    sinks: dict[SinkName, Sink] = Field(
        default_factory=dict, description="Named sinks progress is pushed to; never secrets here."
    )
    objectives: list[Objective] = Field(default_factory=list)
