"""Config reading is bounded: only regular files, at most 1 MiB each, aliases and nesting
measured before anything is built; each refusal is one located line."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from okrsync.config.loader import load
from okrsync.config.yaml_reader import MAX_BYTES, load_yaml
from okrsync.errors import ConfigError

PERIOD = "period: {name: Q, start: 2026-10-01, end: 2026-12-31}\n"
VALID = PERIOD + "objectives:\n  - id: o\n    title: O\n    key_results: []\n"


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(path)
    return [str(p) for p in info.value.problems]


def load_within(path: Path, seconds: float) -> list[str]:
    """The problems of loading `path`, failing (not hanging) if it takes longer."""
    found: list[str] = []
    worker = threading.Thread(target=lambda: found.extend(problems(path)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"loading {path} did not finish in {seconds}s"
    return found


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_as_config_is_refused_without_opening_it(tmp_path: Path) -> None:
    """A FIFO as --config is one error, at once: it is never opened (which would block)."""
    fifo = tmp_path / "okrs.yaml"
    os.mkfifo(fifo)
    assert load_within(fifo, 5) == [
        f"{fifo}: not a regular file (a FIFO?): the config is a YAML file or a directory of them"
    ]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_in_config_directory_is_reported(tmp_path: Path) -> None:
    """A FIFO named *.yaml in the config directory is reported, not read and not skipped."""
    (tmp_path / "a.yaml").write_text(VALID)
    os.mkfifo(tmp_path / "b.yaml")
    assert load_within(tmp_path, 5) == [
        f"{tmp_path}/b.yaml: not a regular file (a FIFO?): "
        "the config is a YAML file or a directory of them"
    ]


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_device_as_config_is_refused() -> None:
    """/dev/zero (endless) is refused as not a regular file, not read until memory runs out."""
    assert load_within(Path("/dev/zero"), 5) == [
        "/dev/zero: not a regular file (a character device?): "
        "the config is a YAML file or a directory of them"
    ]


def test_broken_symlink_in_directory_is_an_error(tmp_path: Path) -> None:
    """A dangling *.yaml link in the config directory is reported instead of skipped."""
    (tmp_path / "a.yaml").write_text(VALID)
    (tmp_path / "team.yaml").symlink_to(tmp_path / "gone.yaml")
    assert problems(tmp_path) == [
        f"{tmp_path}/team.yaml: broken symlink (points to '{tmp_path}/gone.yaml', "
        "which does not exist): fix or remove the link"
    ]


def test_broken_symlink_as_config_is_an_error(tmp_path: Path) -> None:
    """A dangling link given as --config says so, rather than 'no such file'."""
    (tmp_path / "okrs.yaml").symlink_to("gone.yaml")
    assert problems(tmp_path / "okrs.yaml") == [
        f"{tmp_path}/okrs.yaml: broken symlink (points to 'gone.yaml', which does not exist): "
        "fix or remove the link"
    ]


def test_emacs_lock_link_is_not_config(tmp_path: Path) -> None:
    """Emacs' lock link `.#name.yaml` (always dangling) does not break validate mid-edit."""
    (tmp_path / "a.yaml").write_text(VALID)
    (tmp_path / ".#a.yaml").symlink_to("user@host.1234:1700000000")
    assert load(tmp_path).objectives[0].id == "o"


def test_file_over_the_size_bound_is_refused(tmp_path: Path) -> None:
    """A file over 1 MiB is refused by size, saying what to do; exactly 1 MiB still loads."""
    path = tmp_path / "okrs.yaml"
    path.write_text(VALID + "#" * (MAX_BYTES - len(VALID) - 1) + "\n")
    assert path.stat().st_size == MAX_BYTES
    assert load(path).objectives[0].id == "o"
    with path.open("a") as out:
        out.write("\n")
    assert problems(path) == [
        f"{path}: larger than 1 MiB, the most a config file may hold: "
        "split it into several files in one directory"
    ]


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    """The billion-laughs file is refused in well under a second (it once took 16 s, 2.5 GB)."""
    path = tmp_path / "bomb.yaml"
    rows = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    rows += [
        f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    path.write_text("\n".join(rows) + "\n")
    assert path.stat().st_size < 500
    started = time.monotonic()
    with pytest.raises(ConfigError, match="expand to more than 10,000 values"):
        load_yaml(path)
    assert time.monotonic() - started < 1.0


def test_modest_aliases_still_work(tmp_path: Path) -> None:
    """Anchors and aliases of small values (a shared owner, a reused mapping) still load."""
    path = tmp_path / "okrs.yaml"
    path.write_text(
        PERIOD + "objectives:\n"
        "  - {id: a, title: A, owner: &sre sre-team, key_results: &krs []}\n"
        "  - {id: b, title: B, owner: *sre, key_results: *krs}\n"
    )
    assert [o.owner for o in load(path).objectives] == ["sre-team", "sre-team"]


def test_deep_nesting_is_refused_at_its_line(tmp_path: Path) -> None:
    """Nesting past 64 levels is one error at its line, not a RecursionError."""
    path = tmp_path / "deep.yaml"
    path.write_text("x: " + "[" * 100 + "]" * 100 + "\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    [problem] = info.value.problems
    assert problem.line == 1
    assert problem.message == "nested more than 64 levels deep: flatten the YAML"


def test_digest_is_of_the_bytes_read(tmp_path: Path) -> None:
    """The config hash is still the sha256 of the files' bytes, in order (read only once)."""
    (tmp_path / "a.yaml").write_text(PERIOD)
    (tmp_path / "b.yaml").write_text("objectives: []\n")
    expected = hashlib.sha256(PERIOD.encode() + b"objectives: []\n").hexdigest()[:12]
    assert load(tmp_path).digest == expected
