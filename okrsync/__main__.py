"""`python -m okrsync` runs the CLI."""

import sys

from okrsync.cli.main import main

sys.exit(main())
