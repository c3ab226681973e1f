"""`okrsync checkin`: record a value by hand, for a manual KR or as an override of an
automated one (with an author, a note and optionally an expiry, `--until`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from okrsync.cli import moment
from okrsync.cli.exits import EXIT_OK
from okrsync.cli.settings import Settings
from okrsync.errors import UsageError
from okrsync.measure.measurement import Measurement
from okrsync.progress.maths import clamp
from okrsync.review.explain import unknown_kr as _unknown_kr
from okrsync.store.store import Store
from okrsync.timefmt import parse_instant


def checkin(args: Any, settings: Settings) -> int:
    from okrsync.cli.render import percent
    from okrsync.config.loader import load
    from okrsync.progress.definitions import from_config
    from okrsync.progress.maths import Observation
    from okrsync.progress.periods import choose, contains, dates, resolve
    from okrsync.progress.status import assess
    from okrsync.sinks.enqueue import enqueue, prepare

    config = load(settings.config)
    try:
        value = float(args.value)
    except ValueError:
        raise UsageError(f"VALUE must be a number, not '{args.value}'") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise UsageError(f"VALUE must be a finite number, not '{args.value}'")
    now = moment.now_of(args)
    period = config.period
    if args.period is None and not contains(period, now):
        when = "--now " + now.strftime("%Y-%m-%dT%H:%M:%SZ") if args.now else "now"
        raise UsageError(
            f"{when} is outside the current period {dates(period)}: to record a value "
            "for another stored period, name it with --period NAME"
        )
    current = from_config(config)
    if args.period in (None, period.name) and current.kr(args.kr_id) is None:
        raise _unknown_kr(args.kr_id, current, str(settings.config))
    store = Store(settings.db)
    try:
        defs = choose(current, store, args.period, None)
        if now < defs.period.starts_at:
            when = "--now" if args.now else "now"
            raise UsageError(
                f"{when} is before the period {dates(defs.period)} began: "
                "a check-in belongs to a period it falls in or follows"
            )
        defs = resolve(defs, store, now)
        kr = defs.kr(args.kr_id)
        if kr is None:
            where = settings.config if defs.period == period else f"period {defs.period.name}"
            raise _unknown_kr(args.kr_id, defs, str(where))
        problem = defs.start_problem(kr)
        if problem is not None:
            raise UsageError(f"{kr.id} has {problem}: nothing recorded")
        if kr.slo is not None and not 0 <= value <= 100:
            raise UsageError(
                f"{kr.id} is an SLO: its value is an SLI, a percent from 0 to 100, not {value:g}"
            )
        until = _until(args, now, kr.is_manual)
        entry = Measurement(
            kr.id,
            now,
            "manual",
            None,
            value,
            manual=True,
            note=args.note,
            author=args.author or login_name(),
            until=until,
        )
        entry = assess(defs, kr, entry, Observation())
        known = store.observations([k.id for k in defs.key_results()], now, defs.period)
        outgoing = prepare(config, defs, [entry], known)
        with store.transaction():
            store.sync_config(config, now, checked_in=kr.id)  # a check-in applies no config
            ids = store.append(None, [entry], defs.period.name)
            enqueue(store, outgoing, ids, now)
    finally:
        store.close()
    override = "" if kr.is_manual else " (manual override of an automated key result)"
    if until is not None:
        override = (
            f" (manual override until {until:%Y-%m-%dT%H:%M:%SZ}; automation records meanwhile)"
        )
    shown = percent(clamp(entry.progress or 0.0))
    into = f" in {defs.period.name}" if defs.period != period else ""
    print(f"✔ {kr.id} = {value:g}{override}{into}: progress {shown}%, {entry.status}")
    return EXIT_OK


def login_name() -> str:
    """The login name for `checkin --author`'s default; 'unknown' when there is none."""
    import getpass

    try:
        return getpass.getuser() or "unknown"
    except Exception:  # no USER/LOGNAME and no passwd entry (e.g. a bare container uid)
        return "unknown"


def _until(args: Any, now: datetime, manual: bool) -> datetime | None:
    """`checkin --until`: after `now`, and only for an automated KR."""
    if not getattr(args, "until", None):
        return None
    if manual:
        raise UsageError(
            f"--until is only for automated key results: {args.kr_id} is manual, so its "
            "check-in stays until the next one anyway"
        )
    try:
        until = parse_instant(args.until)
    except ValueError as exc:
        raise UsageError(f"--until: {exc}") from None
    if until <= now:
        when = "--now" if args.now else "now"
        raise UsageError(
            f"--until {args.until} is not after {when} ({now:%Y-%m-%dT%H:%M:%SZ}): "
            "an override must hold for some time; nothing recorded"
        )
    return until
