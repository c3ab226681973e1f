"""okrsync: measures key results from their sources and keeps OKR progress true."""

__version__ = "0.1.0"
