"""okrsync: measures key results from their sources and keeps OKR progress true.

The packages are the stages of the data flow, each importing only those before it:

    config/ -> measure/ -> progress/ -> store/ -> service/ (once, daemon) -> cli/

`connector` is the public interface connectors implement (the built-ins live in
`okrsync.connectors`, found like third-party ones through entry points); `errors`,
`secrets`, `logs` and `timefmt` are shared by every stage.
"""

__version__ = "0.1.0"
