"""Config watching: inotify (watchfiles) or polling, only for config files."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from okrsync.service.watch import ConfigWatcher, fingerprint


def edited_until_noticed(path: Path, changed: threading.Event, extra: str = "") -> bool:
    """Edit `path` until the watcher calls back (it starts asynchronously), for 10 s."""
    for i in range(100):
        path.write_text(f"b: {i} {extra}\n")
        if changed.wait(0.1):
            return True
    return False


@pytest.mark.parametrize("mode", ["auto", "poll"])
def test_an_edited_config_file_is_noticed(tmp_path: Path, mode: str) -> None:
    """Writing a *.yaml into the watched directory calls back, with inotify or by polling."""
    (tmp_path / "okrs.yaml").write_text("a: 1\n")
    changed = threading.Event()
    methods: list[str] = []
    watcher = ConfigWatcher(tmp_path, changed.set, mode, 0.05, on_method=methods.append)
    watcher.start()
    try:
        assert edited_until_noticed(tmp_path / "team.yaml", changed)
        assert methods[-1] == ("poll" if mode == "poll" else "watchfiles")
    finally:
        watcher.stop()


@pytest.mark.parametrize("mode", ["auto", "poll"])
def test_a_sloth_spec_the_config_reads_is_watched_too(tmp_path: Path, mode: str) -> None:
    """An edited file in a subfolder is noticed when the config reads it (`also`), and
    only then: other files there are not."""
    (tmp_path / "okrs.yaml").write_text("a: 1\n")
    (tmp_path / "slos").mkdir()
    spec, other = tmp_path / "slos" / "checkout.yaml", tmp_path / "slos" / "other.yaml"
    spec.write_text("x: 0\n")
    changed = threading.Event()
    watcher = ConfigWatcher(tmp_path, changed.set, mode, 0.05, also=lambda: [spec])
    watcher.start()
    try:
        for i in range(10):
            other.write_text(f"y: {i}\n")
            assert not changed.wait(0.1)
        assert edited_until_noticed(spec, changed)
    finally:
        watcher.stop()


def test_a_sloth_spec_is_still_watched_after_its_folder_is_replaced(tmp_path: Path) -> None:
    """A deploy that swaps the folder (move away, copy anew) leaves no watch on it: the
    files the config reads are also compared on each watch timeout."""
    (tmp_path / "okrs.yaml").write_text("a: 1\n")
    (tmp_path / "slos").mkdir()
    spec = tmp_path / "slos" / "checkout.yaml"
    spec.write_text("x: 0\n")
    changed = threading.Event()
    started = threading.Event()
    watcher = ConfigWatcher(
        tmp_path, changed.set, "auto", 0.05, on_method=lambda m: started.set(), also=lambda: [spec]
    )
    watcher.start()
    try:
        assert started.wait(5)
        time.sleep(0.3)
        (tmp_path / "slos").rename(tmp_path / "slos.old")
        shutil.copytree(tmp_path / "slos.old", tmp_path / "slos")
        shutil.rmtree(tmp_path / "slos.old")
        assert edited_until_noticed(spec, changed, "and more")
    finally:
        watcher.stop()


def test_other_files_beside_a_config_file_are_ignored(tmp_path: Path) -> None:
    """The store written next to a watched config file never suggests a reload."""
    config = tmp_path / "okrs.yaml"
    config.write_text("a: 1\n")
    changed = threading.Event()
    started = threading.Event()
    watcher = ConfigWatcher(config, changed.set, "auto", on_method=lambda m: started.set())
    watcher.start()
    try:
        assert started.wait(5)
        for i in range(5):
            (tmp_path / "okrsync.db").write_bytes(b"x" * i)
        assert not changed.wait(0.8)  # longer than the debounce
        for i in range(50):
            config.write_text(f"a: {i}\n")
            if changed.wait(0.1):
                break
        assert changed.is_set()
    finally:
        watcher.stop()


def test_fingerprint_changes_with_content_not_with_other_files(tmp_path: Path) -> None:
    """Only config files count for polling: the store or a README beside them do not."""
    config = tmp_path / "okrs.yaml"
    config.write_text("a: 1\n")
    before = fingerprint(tmp_path)
    (tmp_path / "okrsync.db").write_bytes(b"x" * 100)
    assert fingerprint(tmp_path) == before
    config.write_text("a: 22\n")
    assert fingerprint(tmp_path) != before
    assert fingerprint(tmp_path / "missing") == ()
