"""A source's shards as tasks on a Dask cluster (`mmpipe crawl --scheduler tcp://HOST:PORT`).

Each of a source's `processes` shards becomes one task; the task runs the shard's own `python -m crawlers.run`
process on whichever worker takes it (Scrapy's reactor is one per process, so never a crawl inside the worker),
and returns the shard's summary.  The workers must see the same output and state directory (a shared file system):
RAW files, the crawl state's store and the shard logs are written there exactly as by a local run, so a shard that
fails or whose worker dies resumes where it stopped when the task runs again.  Politeness holds across workers
because a host's URLs all belong to one shard (URL lists and archives shard by host: `urllist.host_shard`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from crawlers.config import ConfigError, CrawlConfig
from crawlers.shardproc import CrawlError, run_shard_process

logger = logging.getLogger("mmpipe.crawl")
_SCHEMES = ("tcp://", "tls://")


def check_scheduler(address: str) -> str:
    if not isinstance(address, str) or not address.startswith(_SCHEMES) or ":" not in address.split("://", 1)[1]:
        raise ConfigError(f"scheduler {address!r} is not a Dask scheduler address: give tcp://HOST:PORT")
    return address


def run_shards(config: CrawlConfig, source_name: str, config_file: Path, scheduler: str) -> list[dict[str, Any]]:
    """Run every shard of the source as a task on the cluster at `scheduler`; their summaries, in shard order.
    Raises the first failed shard's CrawlError after every shard has ended."""
    from distributed import Client

    shards = config.source(source_name).processes
    with Client(check_scheduler(scheduler), timeout="30s") as client:
        futures = [client.submit(_shard_task, config, source_name, k, str(config_file), pure=False,
                                 key=f"mmpipe-crawl-{source_name}-{k}of{shards}-{config.out.name}")
                   for k in range(shards)]
        logger.info("%s: %d shard(s) submitted to %s", source_name, shards, scheduler)
        results = client.gather(futures, errors="skip")
        failures = [str(f.exception()) for f in futures if f.status == "error"]
    if failures:
        raise CrawlError(source_name, "; ".join(failures))
    return results


class ShardFailed(RuntimeError):
    """A shard's process failed on a worker (a plain exception: it travels back to the client pickled)."""


def _shard_task(config: CrawlConfig, source_name: str, shard: int, config_file: str) -> dict[str, Any]:
    """Runs on a worker: the shard's own crawl process; its summary, with the worker that ran it."""
    from distributed import get_worker

    try:
        summary = run_shard_process(config, source_name, shard, Path(config_file), None)
    except CrawlError as exc:
        raise ShardFailed(f"shard {shard} on {get_worker().address}: {exc}") from None
    summary["worker"] = get_worker().address
    return summary
