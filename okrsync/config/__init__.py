"""Stage 1, config: read the YAML under config/, validate it (every problem as file:line),
and give one frozen `Config`. Also the small languages written inside it: durations, cron
schedules, formulas and query placeholders.

Import the modules directly (`okrsync.config.loader.load`); this file imports nothing.
"""
