"""The `okrsync store` arguments and --help (argparse only, so --help stays fast)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

COPY_HELP = """\
Copy a whole OKR store (objectives, KRs, runs, measurements, deliveries, periods) into
an empty one: SQLite to PostgreSQL, back, or between two of a kind. The target's schema
is created first; every row is then copied in one transaction of the target, so an
interrupted copy leaves it empty and can simply be run again. Row counts are verified
table by table before that transaction commits. A target that already holds okrsync rows
is refused (exit 2), never given duplicates. FROM is copied as it was when the copy
began (a daemon may go on writing; what it writes after is not copied: stop it first when
moving for good).

examples:
  okrsync store copy okrsync.db postgresql://okrsync@db:5432/okrsync
  okrsync store copy sqlite:////data/okrsync.db postgresql://okrsync@db/okrsync

The PostgreSQL password comes from OKRSYNC_DB_PASSWORD (or _FILE), as for --db, for both
URLs (it wins over one in a URL); between two servers with different passwords, leave it
unset and give each URL its own (postgresql://user:pw@host/db) or use ~/.pgpass.
Exit 0 copied and verified, 2 a target that is not empty / a source with no rows / the
same store twice, 3 a store error.
"""


def add(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """The `store` command and its `copy` action."""
    p = sub.add_parser(
        "store",
        help="the OKR store itself: copy it into another (SQLite <-> PostgreSQL)",
        description="Work on the OKR store as a whole.",
    )
    common(p)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    c = actions.add_parser(
        "copy",
        help="copy a whole store into an empty one",
        description=COPY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common(c)
    c.add_argument("source", metavar="FROM_URL", help="the store to copy: a path or a URL")
    c.add_argument("target", metavar="TO_URL", help="an empty store to fill: a path or a URL")
