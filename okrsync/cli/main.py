"""The `okrsync` entry point: parse arguments, run the command, map errors to exit codes.

Only argparse is imported up front so `--help` stays fast.
"""

from __future__ import annotations

import os
import sys

from okrsync.cli.exits import EXIT_FAILED, EXIT_INVALID, EXIT_OK, EXIT_STORE
from okrsync.cli.parser import parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command is None:
        parser().print_help()
        return EXIT_INVALID
    from okrsync.cli import commands
    from okrsync.errors import ConfigError, OkrsyncError, StoreError, UsageError

    # plan's 2 says "something would change" (issue 11), so its errors are all 1
    invalid = EXIT_FAILED if args.command == "plan" else EXIT_INVALID
    try:
        return commands.run(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        n = len(exc.problems)
        print(f"okrsync: config invalid ({n} problem{'' if n == 1 else 's'})", file=sys.stderr)
        return invalid
    except UsageError as exc:
        print(f"okrsync: {exc}", file=sys.stderr)
        return invalid
    except StoreError as exc:
        print(f"okrsync: store: {exc}", file=sys.stderr)
        return EXIT_STORE
    except OkrsyncError as exc:
        print(f"okrsync: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `okrsync status | head`: the reader left; that is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # a traceback is a bug: say so in one line, show it on request
        if args.log_level == "debug":
            raise
        print(
            f"okrsync: internal error: {type(exc).__name__}: {exc} (this is a bug; "
            "--log-level debug shows the traceback)",
            file=sys.stderr,
        )
        return 70


if __name__ == "__main__":
    sys.exit(main())
