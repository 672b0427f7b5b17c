"""The body of one source process (`python -m crawlers.run`): lock, Scrapy crawl, summary.

Imported by `crawlers.run` only after it has hidden the libraries the crawl process never uses.
"""

from __future__ import annotations

import fcntl
import gc
import logging
import sys
from pathlib import Path

from scrapy import signals

from crawlers.config import CrawlConfig
from crawlers.progress import emit
from crawlers.settings import scrapy_settings
from crawlers.spiders import SPIDERS
from crawlers.spiders.base import lock_file, shard_tag
from crawlers.summary import source_summary, summaries_dir
from data_schemas import atomic_write_json

GC_YOUNG = 200_000  # net new container objects between young-generation collections (CPython's default: 700)
OK_FINISH = {"finished", "closespider_timeout", "closespider_pagecount", "closespider_itemcount", "shutdown"}


def _lock(path: Path):
    fh = open(path, "a")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return None
    return fh


def run_source(config: CrawlConfig, name: str, shard: int = 0) -> int:
    from scrapy.crawler import CrawlerProcess
    from scrapy.utils.misc import load_object

    source = config.source(name)
    config.out.mkdir(parents=True, exist_ok=True)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    tag = shard_tag(shard, source.processes)
    lock_path = lock_file(config.state_dir, name, tag)
    lock = _lock(lock_path)
    if lock is None:
        print(f"source '{name}{tag}' is already being crawled into {config.out} (lock {lock_path})", file=sys.stderr)
        return 3
    log_file = config.state_dir / f"{name}{tag}.log"
    process = CrawlerProcess(scrapy_settings(config, source, log_file=log_file), install_root_handler=True)
    crawler = process.create_crawler(load_object(SPIDERS[source.kind]))
    process.crawl(crawler, config=config, source=source, shard=shard)
    _quiet_root_logger(crawler)
    _tune_gc()
    process.start()
    try:
        stats = crawler.stats.get_stats()
    except RuntimeError:  # the crawl never started (the error is in the log)
        stats = {}
    summary = source_summary(source, stats)
    summary["log"] = str(log_file)
    summary["status"] = "ok" if summary["finish_reason"] in OK_FINISH else "failed"
    summary["shard"] = tag.lstrip(".")
    target = summaries_dir(config.state_dir) / (f"{name}.json" if not tag else f"shards/{name}{tag}.json")
    atomic_write_json(target, summary)
    emit("done", source=name, summary=summary)
    if summary["finish_reason"] not in OK_FINISH:
        print(f"source '{name}' ended with '{summary['finish_reason']}'; see {log_file}", file=sys.stderr)
        return 1
    return 0


def _quiet_root_logger(crawler) -> None:
    """Scrapy leaves the root logger at NOTSET and filters in its handler, so every DEBUG message (a "Crawled
    (200)" line per request among them) is built into a record before the handler drops it: ~2% of the CPU of
    a crawl.  The root logger at the configured level drops them first.  (Set when the engine starts: applying
    the crawler's settings installs Scrapy's handler again, which resets the level.)"""

    def set_level() -> None:
        logging.root.setLevel(crawler.settings.get("LOG_LEVEL"))

    crawler.signals.connect(set_level, signal=signals.engine_started, weak=False)


def _tune_gc() -> None:
    """A crawl allocates and frees millions of short-lived containers (requests, responses, Deferreds, futures),
    and CPython's default collector (a young-generation pass every 700 net allocations; full passes over every
    object, the ~88,000 of Scrapy's, Twisted's, aiohttp's and pyarrow's modules included) took about a sixth of
    each crawl process's CPU on the benchmark (4.7 of ~27 CPU-s).  Freezing what exists at start-up keeps the full
    passes off it.  A young pass once the tracked objects have grown by 200,000 means none ran during the
    benchmark's crawl (50,000: twelve, 0.7 CPU-s), at the same peak memory (521 vs 523 MB per process): most
    objects die by reference count first.  Cyclic garbage is still collected, in batches of at most that many
    objects."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG, 10, 10)
