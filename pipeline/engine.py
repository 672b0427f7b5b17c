"""Where the work runs: a LocalCluster sized to the machine by default, or any running scheduler by address.

Workers are processes with one thread each: decoding, hashing and resizing hold the GIL for much of their time,
so threads barely scale while processes scale with the cores (see benchmarks/bench_clean.py).  With
``--scheduler`` the workers must see the RAW files and the output directory at the same paths (a shared file
system), exactly as with any Dask deployment that reads and writes files.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path

from pipeline.config import CleanConfig
from pipeline.inputs import CleanError

log = logging.getLogger(__name__)
_SHUTDOWN_RACES = ("CommClosedError", "StreamClosedError")


class _ShutdownRaces(logging.Filter):
    """Drops the tracebacks of a connection closed by a peer that is shutting down: a race of every Dask
    shutdown, harmless once the results are in, and alarming in a successful run's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        return exc not in _SHUTDOWN_RACES and not any(name in record.getMessage() for name in _SHUTDOWN_RACES)


@contextmanager
def _quiet_dask_logs():
    """Dask logs every scheduler, nanny and worker start and stop at INFO in this process (``silence_logs`` covers
    the worker processes only): dozens of lines between the stage's own.  While the cluster runs, its loggers
    report warnings and errors only, without the shutdown races."""
    parent = logging.getLogger("distributed")
    level = parent.level
    names = ["distributed", *(n for n in logging.Logger.manager.loggerDict if n.startswith("distributed.")),
             "tornado.application", "asyncio"]
    loggers = [logging.getLogger(n) for n in names]
    races = _ShutdownRaces()
    parent.setLevel(logging.WARNING)
    for logger in loggers:
        logger.addFilter(races)
    try:
        yield
    finally:
        parent.setLevel(level)
        for logger in loggers:
            logger.removeFilter(races)


@contextmanager
def dask_client(cfg: CleanConfig, *, local_directory: Path | None = None):
    """Yield a connected `distributed.Client`; a cluster started here is closed on exit."""
    import dask
    from distributed import Client, LocalCluster

    if cfg.scheduler:
        try:
            client = Client(cfg.scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise CleanError(f"cannot reach the Dask scheduler at {cfg.scheduler} ({exc}); start it with "
                             "`dask scheduler` or drop --scheduler to use a local cluster") from exc
        try:
            log.info("connected to %s (%d workers)", cfg.scheduler, len(client.scheduler_info()["workers"]))
            with _quiet_dask_logs():
                yield client
        finally:
            client.close()
        return
    tmp = os.environ.get("DASK_TEMPORARY_DIRECTORY") or (str(local_directory) if local_directory else None)
    # The workers' statistical profiler samples every thread's stack every 10 ms: ~5-10 % of the CPU of this job
    # (measured on 200 photos: 16.3 -> 15.5 CPU-s).  Nothing here reads its profiles, so it is off.
    # The event-loop health tick (20 ms), the system monitor (500 ms) and the memory monitor (100 ms) run in the
    # scheduler and in every worker even when idle: measured on an idle 2-worker cluster, 53 + 2 x 30 CPU-ms per
    # second, ~11 % of one core taken from the images; with these intervals 11 + 2 x 5.
    settings = {"distributed.worker.daemon": False, "distributed.admin.tick.limit": "60s",
                "distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s",
                "distributed.admin.system-monitor.interval": "5s",
                "distributed.worker.memory.monitor-interval": "1s"}
    with dask.config.set(settings), _quiet_dask_logs():
        cluster = LocalCluster(n_workers=cfg.workers, threads_per_worker=cfg.threads_per_worker, processes=True,
                               dashboard_address="127.0.0.1:0", local_directory=tmp, silence_logs=logging.WARNING,
                               host="127.0.0.1")
        try:
            client = Client(cluster)
            try:
                log.info("started a LocalCluster: %d workers x %d thread(s)", cfg.workers, cfg.threads_per_worker)
                yield client
            finally:
                client.close()
        finally:
            cluster.close()
