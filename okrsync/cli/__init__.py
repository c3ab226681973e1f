"""The `okrsync` command line: the parser, what each command does, and the text it prints.

Entry point: `okrsync.cli.main:main`.
"""
