"""The body of one source process (`python -m crawlers.run`): lock, Scrapy crawl, summary.

Imported by `crawlers.run` only after it has hidden the libraries the crawl process never uses.
"""

from __future__ import annotations

import fcntl
import sys
from pathlib import Path

from crawlers.config import CrawlConfig
from crawlers.internals import quiet_root_logger, tune_gc
from crawlers.progress import emit
from crawlers.settings import scrapy_settings
from crawlers.spiders import SPIDERS
from crawlers.spiders.base import lock_file, shard_tag
from crawlers.summary import source_summary, summaries_dir
from data_schemas import atomic_write_json

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
    quiet_root_logger(crawler)
    tune_gc()
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
