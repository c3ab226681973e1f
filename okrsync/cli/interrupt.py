"""Ctrl-C during a one-off run: stop within --grace, like the daemon does on SIGTERM."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
EXIT_INTERRUPTED = 130


def within_grace(work: Callable[[], T], grace: float) -> T:
    """`work()` in a worker thread; on SIGINT give it `grace` seconds to finish, then leave.

    A run stores everything in one transaction at its end, so leaving mid-fetch loses
    nothing that was stored and leaves nothing half-written.
    """
    box: dict[str, object] = {}
    done = threading.Event()  # not Thread.join: a join cut short by Ctrl-C can lie after

    def run() -> None:
        try:
            box["result"] = work()
        except BaseException as exc:  # handed to the caller's thread as it is
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="sync", daemon=True).start()
    try:
        while not done.wait(0.2):
            pass
    except KeyboardInterrupt:
        print(
            f"okrsync: interrupted; waiting up to {grace:g}s for requests in flight",
            file=sys.stderr,
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: leave at once
            done.wait(grace)
        leave()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]  # a BaseException by construction
    return box["result"]  # type: ignore[return-value]  # set by work() above


def leave() -> None:
    """Exit now: fetch threads still waiting on a slow source must not hold the process."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)
