"""The HTML report in a real headless browser (Debian's `chromium`): it renders (the
screenshot is not blank and shows the status colours) and logs nothing to the console."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from okrsync.cli.main import main
from okrsync.report.html import CSP

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("CI"):  # CI installs it (.ci/run -> scripts/test)
    raise RuntimeError("CI: chromium is missing; scripts/test installs Debian's chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (apt-get install chromium; CI has it)"
)

CONFIG = """\
period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}
objectives:
  - id: o
    title: "Ship <script>document.title='pwned'</script>"
    owner: team
    key_results:
      - {id: good, source: manual, start: 0, target: 100}
      - {id: late, source: manual, start: 0, target: 100}
      - {id: nothing, source: manual, start: 0, target: 100}
"""
GREEN = (0x2D, 0xA4, 0x4E)  # on_track in okrsync.report.svg.COLOUR


def png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Width, height and RGB pixels of an 8-bit RGB or RGBA PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + size]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + size
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    pixels: list[tuple[int, ...]] = []
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                pa, pb, pc = abs(guess - left), abs(guess - up), abs(guess - corner)
                near = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + near) & 0xFF
        pixels += [tuple(line[i : i + 3]) for i in range(0, stride, channels)]
        previous = line
    return width, height, pixels


def shoot(page: Path, out: Path, tmp_path: Path) -> str:
    """Load `page` in headless Chromium, screenshot it to `out`; its log (stderr)."""
    assert CHROMIUM is not None
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]
    flags += [f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1100,900"]
    flags += ["--enable-logging=stderr", "--v=0", f"--screenshot={out}", page.as_uri()]
    done = subprocess.run(
        [CHROMIUM, *flags],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and out.exists(), done.stderr[-2000:]
    return done.stderr


def console(log: str) -> list[str]:
    """Console messages and uncaught errors in Chromium's log (the report has no script,
    so it should have none at all)."""
    return [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_report_renders_in_chromium(tmp_path: Path) -> None:
    """A non-blank screenshot with the on-track green of bars and charts; no console
    message; the escaped <script> in a title never ran."""
    config, db = tmp_path / "okrs.yaml", tmp_path / "x.db"
    config.write_text(CONFIG)
    flags = ["--config", str(config), "--db", str(db)]
    for day, value in ((1, 2), (3, 8), (5, 12), (7, 18)):
        at = f"2026-10-{day:02d}T00:00:00Z"
        assert main(["checkin", "good", str(value), "--now", at, *flags]) == 0
        assert main(["checkin", "late", str(value / 8), "--now", at, *flags]) == 0
    page = tmp_path / "report.html"
    assert main(["report", "--html", str(page), "--now", "2026-10-08", *flags]) == 0
    log = shoot(page, tmp_path / "shot.png", tmp_path)
    assert console(log) == []
    width, height, pixels = png_pixels((tmp_path / "shot.png").read_bytes())
    assert (width, height) == (1100, 900)
    colours = set(pixels)
    white = sum(p == (255, 255, 255) for p in pixels)
    green = sum(all(abs(a - b) <= 8 for a, b in zip(p, GREEN, strict=True)) for p in pixels)
    assert len(colours) > 50, "the screenshot is (nearly) one colour"
    assert white < 0.97 * len(pixels) and green > 200


def test_the_console_check_sees_errors(tmp_path: Path) -> None:
    """The check above is not vacuous: a failing script is caught, and under the report's
    own Content-Security-Policy so are a script and a fetch from the network."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><p>x</p><script>console.error('boom'); nope();</script>")
    found = console(shoot(page, tmp_path / "bad.png", tmp_path))
    assert any("boom" in line for line in found) and any("Uncaught" in line for line in found)
    policy = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
    page.write_text(f'{policy}<img src="http://example.invalid/a.png"><script>1</script>')
    found = console(shoot(page, tmp_path / "csp.png", tmp_path))
    assert len([line for line in found if "Content Security Policy" in line]) == 2
