"""Watches the config file or directory and calls back when it may have changed.

Uses watchfiles (inotify) and falls back to polling where that is unavailable. The
callback only *suggests* a reload: the daemon validates and compares the content hash.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import structlog

from okrsync.config.loader import config_files

log = structlog.get_logger("okrsync.service.watch")
POLL_INTERVAL = 2.0


def fingerprint(path: Path, also: Iterable[Path] = ()) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of the config files and of the files they read
    (`also`: Sloth specs): changes when they do. Follows symlinks, so a Kubernetes
    ConfigMap swap shows."""
    try:
        files = config_files(path) if path.exists() else []
    except OSError:
        files = []
    return _stats([*files, *also])


def _stats(files: Iterable[Path]) -> tuple[tuple[str, int, int], ...]:
    """Modification times and sizes of `files` (the ones that exist)."""
    out = []
    for file in files:
        try:
            st = file.stat()
        except OSError:
            continue
        out.append((str(file), st.st_mtime_ns, st.st_size))
    return tuple(out)


def _relevant(path: Path, also: tuple[Path, ...] = ()) -> Callable[[Any, str], bool]:
    """Only config files, the files they read (and Kubernetes' `..data` swaps), never e.g.
    the store beside them."""
    target = path.resolve()
    read = {p.resolve() for p in also}

    def accept(_: Any, changed: str) -> bool:
        name = Path(changed).name
        if name.startswith("..") or Path(changed).resolve() in read:
            return True
        if target.is_dir() or not target.exists():
            beside = not target.is_dir() or Path(changed).resolve().parent == target
            return beside and name.endswith((".yaml", ".yml"))
        return Path(changed).resolve() == target or name == path.name

    return accept


class ConfigWatcher:
    """Calls `on_change` from a background thread when the config at `path` changes."""

    def __init__(
        self,
        path: Path,
        on_change: Callable[[], None],
        mode: str = "auto",
        poll_interval: float = POLL_INTERVAL,
        on_method: Callable[[str], None] = lambda method: None,
        also: Callable[[], Iterable[Path]] = tuple,
    ) -> None:
        self.path = path
        self.on_change = on_change
        self.mode = mode
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="okrsync-watch", daemon=True)
        self.on_method = on_method
        self.also = also
        """The files the running config reads besides its own (asked again after changes)."""

    def start(self) -> None:
        if self.mode != "off":
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        if self.mode == "auto":
            try:
                self._watchfiles()
                return
            except Exception as exc:  # no inotify (or watchfiles broke): polling still works
                log.warning("config_watch_fallback", reason=str(exc), method="poll")
        self._poll()

    def _watchfiles(self) -> None:
        import watchfiles

        folder = self.path if self.path.is_dir() else self.path.resolve().parent
        self.on_method("watchfiles")
        log.info("config_watch", path=str(self.path), method="watchfiles")
        while not self._stop.is_set():
            also = self._also()
            seen = _stats(also)
            folders = sorted({folder, *(p.parent for p in also if p.parent.is_dir())})
            for changes in watchfiles.watch(
                *folders,
                watch_filter=_relevant(self.path, also),
                stop_event=self._stop,
                debounce=400,
                raise_interrupt=False,
                recursive=False,
                rust_timeout=int(self.poll_interval * 1000),
                yield_on_timeout=True,
            ):
                now = _stats(also)  # also on each timeout: a folder swapped under a watch
                if changes or now != seen:
                    seen = now
                    self.on_change()
                if self._also() != also:
                    break  # the config now reads other files: watch their folders

    def _also(self) -> tuple[Path, ...]:
        try:
            return tuple(sorted(set(self.also())))
        except Exception:  # a watcher must keep watching the config itself
            log.debug("config_watch_also_failed", exc_info=True)
            return ()

    def _poll(self) -> None:
        self.on_method("poll")
        log.info("config_watch", path=str(self.path), method="poll")
        seen = fingerprint(self.path, self._also())
        while not self._stop.wait(self.poll_interval):
            now = fingerprint(self.path, self._also())
            if now != seen:
                seen = now
                self.on_change()
