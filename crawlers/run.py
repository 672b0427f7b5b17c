"""One source, one process: `python -m crawlers.run --config-json FILE --source NAME`.

Scrapy's reactor cannot be restarted and an in-process crawl takes over logging, so every source runs here, in
its own interpreter; `crawlers.stage` starts these processes (in parallel, or on other machines via the flows).
Exit status: 0 done, 1 crawl failed, 2 bad configuration, 3 the source is already being crawled into this dir.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import sys
from pathlib import Path

from crawlers.config import ConfigError, CrawlConfig
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


class _NoPandas:
    """pyarrow imports pandas (if installed) on its first `pa.array()` just to ask whether the input is a pandas
    object: ~1.5 s of CPU per source process for a library the crawler never uses.  Hiding it from this process
    makes pyarrow skip that check."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("pandas is not used by the crawl process", name=name)
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawlers.run", description=__doc__)
    parser.add_argument("--config-json", required=True, type=Path, help="CrawlConfig.to_dict() as JSON")
    parser.add_argument("--source", required=True)
    parser.add_argument("--shard", type=int, default=0, help="which of the source's `processes` this one is")
    args = parser.parse_args(argv)
    if "pandas" not in sys.modules:
        sys.meta_path.insert(0, _NoPandas)
    try:
        config = CrawlConfig.from_dict(json.loads(args.config_json.read_text()))
        processes = config.source(args.source).processes
        if not 0 <= args.shard < processes:
            raise ConfigError(f"--shard {args.shard}: source '{args.source}' has {processes} process(es)")
    except (ConfigError, OSError, ValueError, TypeError) as exc:
        print(f"{args.config_json}: {exc}", file=sys.stderr)
        return 2
    logging.captureWarnings(True)
    return run_source(config, args.source, args.shard)


if __name__ == "__main__":
    sys.exit(main())
