"""Exit codes of every okrsync command: a contract scripts and CI rely on."""

from __future__ import annotations

EXIT_OK = 0  # done
EXIT_FAILED = 1  # some key results could not be measured (the others were stored)
EXIT_INVALID = 2  # invalid config, arguments or value
EXIT_STORE = 3  # the OKR store cannot be read or written
EXIT_DELIVERY = 4  # all key results measured, but some deliveries to sinks failed for good
EXIT_BUG = 70  # an internal error: a bug, reported in one line
