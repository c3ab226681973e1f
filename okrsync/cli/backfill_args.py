"""The `okrsync backfill` arguments and --help (argparse only, so --help stays fast)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

HELP = """\
Measure key results for past instants from their sources and store them, so a KR
added mid-period shows its whole trend. Each point is stored like a live measurement
(value, progress and status as of its instant, the exact query), flagged backfilled.

Which key results can be backfilled:
  prometheus       always: one query_range request per distinct query over the span
  jira/github/http when the query names the day with {now}, e.g.
                   project = OPS AND resolved <= "{now}"   or   merged:<{now}
                   one request per day; the point for day D is measured at D 00:00 UTC
                   with {now} = D, so --step must be whole days
  formulas         when every input can; manual KRs never
Others are listed as skipped with the reason; naming one is exit 2.

An instant where the KR already has a value (live, checked in or backfilled) within
half a step is skipped, so running the same backfill twice writes nothing the second
time, and a re-run after Ctrl-C continues where it stopped (each KR is stored in its own
transaction). A point the source fails is reported, not stored, and tried again by the
next run; an instant without data is a gap, never 0.

examples:
  okrsync backfill api-latency                 from the period start to now, daily
  okrsync backfill --all --dry-run             what it would cost, writing nothing
  okrsync backfill api-latency --step 1h --from 2026-11-01
  okrsync backfill api-latency --replace       re-measure with the reworded query

exit status: 0 every point stored or a gap, 1 some points failed (listed), 2 bad usage or
config (unknown KR, --from after --to, a KR or step that cannot be backfilled), 3 store
error, 130 interrupted (the KRs finished so far are kept).
"""


def add(sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "backfill",
        help="measure key results for past instants (history from the period start)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common(p)
    p.add_argument("kr_ids", nargs="*", metavar="KR_ID", help="key results to backfill")
    p.add_argument("--all", action="store_true", help="every key result that can be backfilled")
    p.add_argument(
        "--from", dest="start", metavar="DATE", help="first instant (default: the period start)"
    )
    p.add_argument("--to", dest="end", metavar="DATE", help="last instant (default: now)")
    p.add_argument(
        "--step",
        default="1d",
        metavar="DURATION",
        help="time between points, e.g. 1h or 1d (default 1d; whole days for {now} queries)",
    )
    p.add_argument(
        "--replace",
        action="store_true",
        help="re-measure the span with the current query; older backfilled points in it are "
        "kept in history as superseded (live measurements are never touched)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (points, requests, estimated time, skipped KRs); write nothing",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--now", metavar="ISO-8601", help="the moment taken as now (default: the current time)"
    )
