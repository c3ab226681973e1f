"""The `okrsync run` arguments and --help (argparse only, so --help stays fast)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

Adder = Callable[..., None]


def seconds(text: str, minimum: float, too_small: str) -> float:
    """A duration flag: `3s`, `1m` or a bare number of seconds, at least `minimum`."""
    from okrsync.config.duration import parse_duration

    try:
        value = float(text)
    except ValueError:
        try:
            return parse_duration(text, minimum=minimum)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    if not minimum <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"'{text}' {too_small}")
    return value


def lease(text: str) -> float:
    """`--lease`: a duration (`15s`, `1m`) or a bare number of seconds, at least 1s."""
    return seconds(text, 1, "must be at least 1 second")


def add(sub: Any, common: Adder, grace: Adder, no_now: Adder) -> None:
    """Add `run` to the subcommands `sub`, with the shared flag helpers of parser.py."""
    p = sub.add_parser(
        "run",
        help="the daemon: measure each key result on its schedule until SIGTERM",
        description="Measure every automated key result on its own schedule (`every` "
        "or `cron`), resuming from the store's history, until SIGTERM/SIGINT. The config "
        "is watched (and re-read on SIGHUP): a valid change applies at once, an invalid "
        "one is logged and the running config kept. Serves /healthz, /readyz, /metrics "
        "and /report (the HTML report; ?owner=, ?objective=, ?period= filter it). "
        "Several `okrsync run` on one store elect one leader through a lease in the "
        "store: it measures; the others stand by, serve the store's values and take "
        "over once its lease expires (/metrics: okrsync_leader). "
        "Exit 0 after a signal; 2 invalid config at start; 3 store error.",
    )
    common(p)
    p.add_argument("--once", action="store_true", help="measure everything once (= sync --once)")
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="HTTP endpoint (env OKRSYNC_LISTEN; default 127.0.0.1:9464; "
        "0.0.0.0:9464 in a container)",
    )
    grace(p, "on SIGTERM/SIGINT,")
    no_now(p)
    p.add_argument(
        "--workers", type=int, default=8, metavar="N", help="batches in flight at once (default 8)"
    )
    p.add_argument(
        "--watch",
        choices=["auto", "poll", "off"],
        default="auto",
        help="config watching: auto (inotify, else polling), poll, off (SIGHUP only)",
    )
    p.add_argument(
        "--lease",
        type=lease,
        default=15.0,
        metavar="DURATION",
        help="the leader lease between replicas on one store, e.g. 15s (a bare number is "
        "seconds; at least 1s; default 15s): renewed every third of it, taken over by a "
        "standby once it expires",
    )
