"""The config daemon subprocess tests run: KRs on one Prometheus source, in a period
around the real today."""

from __future__ import annotations

from clock import running_period


def config_text(url: str, *krs: str, every: str = "1s") -> str:
    """`krs` (flow mappings) under one objective, measured every `every` from `url`."""
    lines = [
        running_period("Q4").rstrip(),
        f"defaults: {{every: {every}}}",
        f'sources:\n  prom: {{type: prometheus, url: "{url}", timeout: 30}}',
        "objectives:\n  - id: o\n    title: O\n    key_results:",
    ]
    lines += [f"      - {kr}" for kr in krs]
    return "\n".join(lines) + "\n"
