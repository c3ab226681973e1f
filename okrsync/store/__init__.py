"""Stage 4, store: the OKR store (SQLite through sqlite-utils); the only code that touches it."""
