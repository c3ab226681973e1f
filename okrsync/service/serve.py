"""Wires the daemon to the outside: signals, the HTTP endpoint and the config watcher."""

from __future__ import annotations

import signal
from types import FrameType

import structlog

from okrsync.progress.definitions import Definitions, from_config
from okrsync.service.daemon import Daemon
from okrsync.service.health import HealthServer
from okrsync.service.options import Options
from okrsync.service.report_page import ReportPage, monotonic
from okrsync.service.watch import ConfigWatcher

log = structlog.get_logger("okrsync.service.serve")


def install_signals(daemon: Daemon) -> None:
    """SIGTERM and SIGINT stop the daemon (with its grace period); SIGHUP reloads the config."""

    # Handlers only set flags and write to the daemon's self-pipe: logging here could
    # deadlock on a lock the interrupted main thread holds (structlog's write lock).
    def stop(signum: int, _: FrameType | None) -> None:
        daemon.signals.append(signal.Signals(signum).name)
        daemon.request_stop()

    def hup(signum: int, _: FrameType | None) -> None:
        daemon.signals.append("SIGHUP")
        daemon.request_reload()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, hup)


def running(daemon: Daemon) -> tuple[Definitions, str] | None:
    """The running config's definitions and hash, for /report."""
    active = daemon.active
    return None if active is None else (from_config(active.config), active.config.digest)


def serve(opts: Options) -> bool:
    """Run the daemon until a signal stops it; True when in-flight fetches were abandoned."""
    daemon = Daemon(opts)
    install_signals(daemon)  # before the (possibly slow) start: a SIGHUP must not kill us
    server = None
    if opts.listen:  # bind first: a bad or busy --listen must fail before any store write
        page = ReportPage(opts.db, lambda: running(daemon), daemon.now, monotonic)
        server = HealthServer(
            opts.listen,
            daemon.health.healthz,
            daemon.health.readyz,
            daemon.metrics.registry,
            page.get,
        )
    if server:  # answers at once: /readyz is 503 until the store and the config are up
        server.start()
    try:
        started = daemon.start()
    except BaseException:
        if server:
            server.close()
        raise
    if not started:  # stopped by a signal while the store could not be reached
        if server:
            server.close()
        return False
    watcher = ConfigWatcher(
        opts.config,
        daemon.request_reload,
        opts.watch,
        opts.poll_interval,
        on_method=lambda method: setattr(daemon.health, "watch", method),
        also=lambda: daemon.active.config.also_read if daemon.active else (),
    )
    try:
        watcher.start()
    except BaseException:  # not serving after all: give the lease up for a standby at once
        daemon.leadership.stop()
        if server:
            server.close()
        raise
    log.info(
        "serving",
        listen=server.address if server else None,
        config=str(opts.config),
        db=daemon.store.path,
        workers=opts.workers,
        key_results=len(daemon.schedule.timings),
    )
    try:
        return daemon.run()
    finally:
        watcher.stop()
        if server:
            server.close()
