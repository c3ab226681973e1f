"""The `okrsync` argument parser: every command, flag and default, and the --help texts."""

from __future__ import annotations

import argparse

from okrsync.cli import backfill_args, run_args, store_args

DESCRIPTION = """\
okrsync measures key results from their sources (Prometheus, Jira, GitHub, any JSON API),
computes progress and status, rolls them up into objectives and keeps the history in an
OKR store (SQLite). A key result with `slo:` is an SLO, judged by its error budget.

typical use:
  okrsync validate                    check config/ (exit 2 with file:line on errors)
  okrsync sync --once                 measure every key result once and store the values
  okrsync status                      the objective tree with progress bars
  okrsync status --json --now 2026-11-15
  okrsync checkin incidents-postmortem 4 --note "Q4 so far"
  okrsync history api-uptime
  okrsync explain api-uptime          where the value came from: query, answer, arithmetic
  okrsync grade --period 2026-Q4      the scorecard of a period: scores and grades
  okrsync plan                        what applying the config would change (exit 2: something)
  okrsync apply                       sync --once, recording the config's git commit
  okrsync report --html report.html   the report: tree, trends, forecasts, changes
  okrsync backfill --all --dry-run    history from the period start, from the sources
  okrsync store copy okrsync.db postgresql://okrsync@db:5432/okrsync

environment: OKRSYNC_CONFIG (default config/), OKRSYNC_DB (default okrsync.db; or a
postgresql:// URL, password in OKRSYNC_DB_PASSWORD[_FILE]), OKRSYNC_LOG_LEVEL,
OKRSYNC_LOG_FORMAT; source secrets as OKRSYNC_<SOURCE>_TOKEN etc.
exit status: 0 ok, 1 some key results failed, 2 invalid config or arguments, 3 store error,
4 (sync) all measured but some deliveries to sinks failed for good.
"""


LOG_LEVELS = ["debug", "info", "warning", "error"]
LOG_FORMATS = ["auto", "console", "json"]


def grace(text: str) -> float:
    """`--grace`: a duration (`3s`, `1m`) or a bare number of seconds, at least 0."""
    return run_args.seconds(text, 0, "must be 0 or more seconds")


def _positive(text: str) -> int:
    """A whole number of at least 1."""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"'{text}' must be a whole number of at least 1")
    return number


def _common(p: argparse.ArgumentParser, *, top: bool = False) -> None:
    """The flags every command takes, before or after its name (after wins)."""
    default = None if top else argparse.SUPPRESS
    p.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help="config file or directory of *.yaml (env OKRSYNC_CONFIG; default config/)",
    )
    p.add_argument(
        "--db",
        metavar="PATH|URL",
        default=default,
        help="OKR store: a SQLite file, sqlite:///path, or postgresql://user@host:5432/db "
        "(password from OKRSYNC_DB_PASSWORD[_FILE]; env OKRSYNC_DB; default okrsync.db)",
    )
    p.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=default,
        help="log verbosity on stderr (env OKRSYNC_LOG_LEVEL; default warning, "
        "info for `okrsync run`)",
    )
    p.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=default,
        help="auto (default): console on a terminal, JSON lines otherwise",
    )


def _now(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--now", metavar="ISO-8601", help=f"{what} (default: the current time)")


def _no_now(p: argparse.ArgumentParser) -> None:
    """Accept --now only to refuse it with a reason: measuring is always of the present."""
    p.add_argument("--now", metavar="ISO-8601", help=argparse.SUPPRESS)


def _grace(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--grace",
        type=grace,
        default=10.0,
        metavar="DURATION",
        help=f"{what} wait this long for in-flight fetches, e.g. 3s or 1m "
        "(a bare number is seconds; default 10s)",
    )


def _only(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--only", nargs="+", action="extend", metavar="KR_ID", help=what)


PLAN_HELP = """\
Measure every automated key result (or --only some) as `sync --once` would, store
nothing (the store is opened read-only; a missing store means everything is added), and
show what applying the config would change, per key result: value, progress and status
before (the store's latest in the config's period, judged as `status` showed it with the
definitions last applied) and after (measured now), and each definition field that
changed since the last writing run (query, target, start, source, formula, weight, unit,
title, ...); key results and objectives to add or retire. Text is made for a pull-request
comment: a summary line, then `~` change, `+` add, `-` retire blocks.

exit status: 0 nothing would change, 2 something would (a changed query, target or
source counts even when the value is the same; so does a different value, progress or
status), 1 an error: some key result failed to measure (wins over 2), an invalid config
or an unknown --only id, 3 store error.

examples:
  okrsync plan                         the whole config against okrsync.db
  okrsync plan --only api-uptime --json
  # CI on the config repository's pull requests (the store from the last apply):
  okrsync plan --config config/ --db okrsync.db > plan.txt; test $? -ne 1
"""

APPLY_HELP = """\
`sync --once` that names its run `apply`: measure every automated key result (or --only
some), store the values, and sync the config's objectives and key results into the store
(the definitions the next `plan` compares with). The run records the config's hash and,
when the config is inside a git repository, its commit (`<sha>-dirty` when the config's
files differ from it). Exit status as sync --once: 0 ok, 1 some failed, 2 invalid config,
3 store error, 4 some deliveries failed for good.

example, after merging a pull request on the config repository:
  git pull && okrsync apply
"""


def _period(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--period", metavar="NAME", help=what)


def parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    root = argparse.ArgumentParser(prog="okrsync", description=DESCRIPTION, formatter_class=fmt)
    root.add_argument("--version", action="version", version="okrsync 0.1.0")
    _common(root, top=True)
    sub = root.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "validate",
        help="check the config; exit 2 listing every problem",
        description="Validate the config and list every problem as file:line.",
    )
    _common(p)

    p = sub.add_parser(
        "schema",
        help="print the config's JSON Schema (for editor completion)",
        description="Print the JSON Schema of the config format, generated from "
        "okrsync's models. Reference it from YAML with\n"
        "  # yaml-language-server: $schema=./okrsync.schema.json",
        formatter_class=fmt,
    )
    _common(p)

    p = sub.add_parser(
        "sync",
        help="measure every key result once and store the results",
        description="Measure every automated key result once and append the "
        "results to the store. Exit 0 when all were measured, 1 when some failed "
        "(the others are stored, failures recorded with their error). It measures the "
        "sources as they are now, so it takes no --now (status --now looks back).",
    )
    _common(p)
    p.add_argument(
        "--once",
        action="store_true",
        help="run once and exit (the only mode; `okrsync run` is the daemon)",
    )
    p.add_argument("--dry-run", action="store_true", help="measure and print; store nothing")
    _only(p, "measure only these key results (`--only a b` or `--only a --only b`)")
    _grace(p, "on Ctrl-C (SIGINT),")
    _no_now(p)

    p = sub.add_parser(
        "plan",
        help="what applying the config would change: values, progress, status, definitions",
        description=PLAN_HELP,
        formatter_class=fmt,
    )
    _common(p)
    _only(p, "measure only these key results (the others keep the store's values)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _now(p, "judge progress and status as of this time (the sources are asked now)")

    p = sub.add_parser(
        "apply",
        help="sync --once, recording the config's hash and git commit with the run",
        description=APPLY_HELP,
        formatter_class=fmt,
    )
    _common(p)
    _only(p, "measure only these key results (`--only a b` or `--only a --only b`)")
    _grace(p, "on Ctrl-C (SIGINT),")
    _no_now(p)

    p = sub.add_parser(
        "status",
        help="the objective tree with progress and status",
        description="Show every objective and key result of a period: the latest "
        "measurement of the period at or before --now (default: now), expected progress "
        "at it. Only the period's own measurements count: a KR not yet measured in it is "
        "no_data. Once the period has ended it is shown as of its end, with scores and "
        "grades. --now T shows the period that contains T (a past one with the targets it "
        "had); exit 2 for a T in no known period.",
    )
    _common(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _period(p, "show this stored period (default: the config's)")
    _now(p, "evaluate as of this time")

    p = sub.add_parser(
        "grade",
        help="the scorecard of a period: scores 0.0-1.0 and grades",
        description="Score every key result of a period (its progress clamped to 0-1, two "
        "decimals) and grade it: aspirational good >= 0.7, fair >= 0.4, else poor; "
        "committed met at 1.0, else missed (bands from defaults.grading). Objectives get "
        "the weighted mean of their items' scores. Committed misses are listed first. "
        "A running period is scored as of now. Exit 0; 2 for an unknown period.",
    )
    _common(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--md", metavar="FILE", help="also write the scorecard as Markdown to FILE ('-': stdout)"
    )
    _period(p, "grade this stored period (default: the config's)")
    _now(p, "score as of this time")

    p = sub.add_parser(
        "report",
        help="the report: objective tree, trends, forecasts and changes (HTML, Markdown)",
        description="Write the report of a period: the objective tree with progress bars "
        "coloured by status, stale, failing and no-data key results first, each key "
        "result's trend over the period with the expected progress and a forecast of its "
        "value at the period's end (least squares over its last 14 days), and what changed "
        "since --since (default: 7 days before). --html writes one self-contained file, "
        "--md Markdown for a wiki or pull request ('-': stdout). Exit 0; 2 for an unknown "
        "period, objective or owner.",
    )
    _common(p)
    p.add_argument("--html", metavar="FILE", help="write the HTML report to FILE ('-': stdout)")
    p.add_argument("--md", metavar="FILE", help="write the Markdown report to FILE ('-': stdout)")
    _period(p, "report on this stored period (default: the config's)")
    p.add_argument("--owner", metavar="NAME", help="only objectives owned by NAME")
    p.add_argument("--objective", metavar="ID", help="only this objective and its children")
    p.add_argument(
        "--since", metavar="ISO-8601", help="what changed since this time (default: 7 days before)"
    )
    _now(p, "report as of this time")

    p = sub.add_parser(
        "history",
        help="measurements of one key result, newest first",
        description="Every measurement of a key result (retired ones too).",
    )
    _common(p)
    p.add_argument("kr_id", metavar="KR_ID")
    p.add_argument("--json", action="store_true", help="a JSON array with the store's fields")
    p.add_argument("--limit", type=_positive, metavar="N", help="at most N rows (N >= 1)")
    _now(p, "only measurements at or before this time")

    p = sub.add_parser(
        "checkin",
        help="record a value by hand (manual KRs, or an override)",
        description="Record a value for a key result: the value of a manual KR, or an\n"
        "override of an automated one (marked manual in history, with its author and note).\n\n"
        "Overrides of automated KRs:\n"
        "  without --until  the next automated value replaces it (as any newer value does)\n"
        "  --until T        it holds until T: automation keeps recording (see history and\n"
        "                   explain) but status, grade, /metrics and sinks show the override;\n"
        "                   from T on the latest automated value shows again, even one\n"
        "                   recorded during the override. A later check-in replaces it.\n"
        "  --until must be after --now (or now), and only automated KRs take it (exit 2).\n\n"
        "examples:\n"
        '  okrsync checkin incidents-postmortem 4 --note "after the Nov review"\n'
        '  okrsync checkin api-uptime 99.9 --note "exporter broken, INC-42" --until 2026-12-01',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    p.add_argument("kr_id", metavar="KR_ID")
    p.add_argument("value", metavar="VALUE", help="the number, e.g. 4 or 99.95")
    p.add_argument("--note", metavar="TEXT", help="why, for the history")
    p.add_argument(
        "--author",
        metavar="NAME",
        help="who checks it in (default: your login name, else 'unknown')",
    )
    p.add_argument(
        "--until",
        metavar="ISO-8601",
        help="automated KRs: the override holds until then (a date is its 00:00 UTC)",
    )
    _period(
        p,
        "record it for this stored period (needed for a --now outside the config's period, "
        "e.g. a late check-in for the last quarter)",
    )
    _now(p, "the time the value applies to (within the config's period, unless --period)")

    p = sub.add_parser(
        "explain",
        help="where a key result's value came from: query, raw answer, arithmetic, status rule",
        description="Explain the latest measurement of a key result (or the latest at or\n"
        "before --at): its source and the exact query sent (with the period's dates filled\n"
        "in), the raw answer, formula inputs, start and target, the progress arithmetic,\n"
        "the status rule with the expected progress at that time, when it was fetched and\n"
        "how long it took, the run and config (hash, git commit), and whether it was\n"
        "automated or a manual check-in (author, note, until). While an override holds,\n"
        "both it and the automated value under it are shown.\n\n"
        "examples:\n"
        "  okrsync explain api-uptime\n"
        "  okrsync explain closure-rate --at 2026-11-15T12:00:00Z\n"
        "  okrsync explain api-uptime --json | jq .progress.arithmetic\n\n"
        "exit status: 0 explained, or the KR has no measurement yet (said so);\n"
        "2 unknown key result (close matches named) or a bad --at; 3 store error.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    p.add_argument("kr_id", metavar="KR_ID")
    p.add_argument(
        "--at",
        metavar="ISO-8601",
        help="the latest measurement at or before this time (default: now), judged as of it",
    )
    p.add_argument("--json", action="store_true", help="machine-readable (fields in README)")

    run_args.add(sub, _common, _grace, _no_now)
    p = sub.add_parser(
        "deliveries",
        help="the outbox: deliveries of progress to sinks, and re-queueing failed ones",
        description="List every delivery of a measurement to a sink (oldest first) with its "
        "state (pending, delivered, failed, superseded), attempts, last HTTP status and last "
        "error. `deliveries retry ID` or `retry --all` makes failed ones pending again; "
        "the next `sync --once` (or the daemon) sends them, with their idempotency key.",
    )
    _common(p)
    p.add_argument("--failed", action="store_true", help="only deliveries that failed for good")
    p.add_argument("--json", action="store_true", help="a JSON array of the deliveries")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    r = actions.add_parser("retry", help="re-queue failed deliveries: ID, or --all")
    _common(r)
    r.add_argument("id", nargs="?", metavar="ID", help="the delivery's id (from `deliveries`)")
    r.add_argument("--all", action="store_true", help="every failed delivery")
    backfill_args.add(sub, _common)
    store_args.add(sub, _common)
    return root
