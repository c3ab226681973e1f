"""A wake-up call for the daemon's main loop, safe to ring from signal handlers."""

from __future__ import annotations

import contextlib
import os
import select


class Waker:
    """Wakes the main loop from worker threads and signal handlers alike.

    A self-pipe rather than threading.Event: a signal handler runs on the main thread
    between bytecodes, and taking a lock the interrupted code holds would deadlock it.
    """

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def set(self) -> None:
        with contextlib.suppress(OSError):  # a full pipe is awake already; closed: stopped
            os.write(self._write, b"!")

    def wait(self, timeout: float) -> None:
        select.select([self._read], [], [], timeout)

    def clear(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)
