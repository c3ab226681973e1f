"""An SLO KR's queries: good (or errors) and total over the SLO window and, when they
count over `{window}`, over each burn window. The plan fetches them like formula inputs
(in parallel, deduplicated)."""

from __future__ import annotations

from datetime import datetime

from okrsync.config import plugins, templating
from okrsync.config.loader import Config
from okrsync.config.model import KeyResult, Measure, Period
from okrsync.config.slo import Slo, fields_of, queries
from okrsync.config.templating import WINDOW


def window_text(slo: Slo, period: Period, now: datetime) -> str:
    """`{window}` for the SLO window: the period so far in whole seconds, or as written."""
    if slo.rolling:
        return slo.window
    length = (period.ends_at - period.starts_at).total_seconds()
    elapsed = min((now - period.starts_at).total_seconds(), length)
    return f"{max(int(elapsed), 1)}s"


def counts_windows(slo: Slo) -> bool:
    """Whether both queries count over `{window}` (else there are no burn rates to ask)."""
    return all(WINDOW.search(str(q)) for _, q in queries(slo))


def measures(config: Config, kr: KeyResult, now: datetime) -> list[tuple[str, Measure]]:
    """The KR's queries as named measures: `good`/`errors` and `total` over the SLO window,
    then `good@1h`, `total@1h`, ... over each burn window."""
    assert kr.slo is not None and kr.source is not None
    main = plugins.plugin(config.sources[kr.source].type).main_query_key
    windows = [("", window_text(kr.slo, config.period, now))]
    if counts_windows(kr.slo):
        windows += [(f"@{w}", w) for w in kr.slo.burn_windows()]
    out = []
    for suffix, window in windows:
        for name, query in queries(kr.slo):
            fields = templating.render(fields_of(query, main), {"window": window}, WINDOW)
            out.append((name + suffix, Measure.model_validate({"source": kr.source, **fields})))
    return out
