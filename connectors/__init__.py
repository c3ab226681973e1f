"""The built-in connectors, one module per source, registered as `okrsync.connectors` entry
points like any third-party connector; `_http` holds the one HTTP error classifier."""
