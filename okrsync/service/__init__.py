"""Running the pipeline config -> measure -> progress -> store: one pass (`sync --once`) or
forever (`okrsync run`: the scheduler, the daemon, its HTTP endpoints, metrics and the
config watcher).
"""
