"""`python -m okrsync` runs the CLI."""

import sys

from okrsync.cli import main

sys.exit(main())
