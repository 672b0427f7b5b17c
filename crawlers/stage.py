"""The crawl stage's entry points: `crawl(config) -> out dir` and `crawl_source(config, name) -> summary`.

Each source runs as its own `python -m crawlers.run` process (Scrapy's reactor is one per process), so sources
run in parallel here, or as separate Prefect tasks, or on other machines sharing the output directory.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from crawlers.config import CrawlConfig
from crawlers.shardproc import CrawlError, ProgressFn, run_shard_process
from crawlers.summary import SUMMARY_NAME, merge_shards, summaries_dir, write_merged
from data_schemas import atomic_write_json, storage

logger = logging.getLogger("mmpipe.crawl")


def _config_file(config: CrawlConfig, name: str) -> Path:
    path = config.state_dir / f"{name}.config.json"
    atomic_write_json(path, config.to_dict())
    return path


def _spill(config: CrawlConfig) -> tuple[CrawlConfig, str | None]:
    """(the config the crawl processes run with, the URL its RAW files are published to or None): a URL ``out``
    is crawled into its local spill directory (`CrawlConfig.local_out`), state and all."""
    if not storage.is_url(config.out):
        return config, None
    return dataclasses.replace(config, out=config.local_out, state_dir=config.state_dir), config.out


def publish_raw(local: Path, url: str) -> str:
    """Publish a crawl's RAW files to ``url`` (each whole or not at all; those already there are skipped: names
    are unique per run, files immutable), then its crawl_summary.json.  The crawl state stays local."""
    fs, root = storage.filesystem(url)
    present = set(fs.find(root)) if storage.exists(url) else set()
    for src in sorted(p for p in local.glob("*.parquet") if p.is_file() and not p.name.startswith(".")):
        dest = storage.join(url, src.name)
        if storage.filesystem(dest)[1] not in present:
            storage.publish_file(src, dest)
    if (local / SUMMARY_NAME).exists():
        storage.publish_file(local / SUMMARY_NAME, storage.join(url, SUMMARY_NAME))
    return url


def crawl_source(config: CrawlConfig, source_name: str, *, progress: ProgressFn | None = None,
                 merge_summary: bool = True, scheduler: str | None = None) -> dict[str, Any]:
    """Crawl one source in its own subprocess(es) (`processes: N` shards), here or, given a Dask `scheduler`
    address, as tasks on that cluster (crawlers/cluster.py); returns its summary, which is also saved in
    <state>/summaries/<name>.json and merged into <out>/crawl_summary.json.  A URL ``out`` is crawled into its
    local spill directory and its RAW files published there (`publish_raw`)."""
    config, remote = _spill(config)
    summary = _crawl_source(config, source_name, progress=progress, merge_summary=merge_summary,
                            scheduler=scheduler)
    if remote:
        publish_raw(config.out, remote)
    return summary


def _crawl_source(config: CrawlConfig, source_name: str, *, progress: ProgressFn | None, merge_summary: bool,
                  scheduler: str | None) -> dict[str, Any]:
    config.validate()
    source = config.source(source_name)  # fail here, naming the source, before starting a process
    config.out.mkdir(parents=True, exist_ok=True)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    config_file = _config_file(config, source_name)
    if scheduler is not None:
        from crawlers.cluster import run_shards

        shards = run_shards(config, source_name, config_file, scheduler)
        summary = shards[0] if len(shards) == 1 else merge_shards(shards)
        summary["workers"] = [s.pop("worker", None) for s in shards]  # which worker ran each shard
        atomic_write_json(summaries_dir(config.state_dir) / f"{source_name}.json", summary)
    elif source.processes == 1:
        summary = run_shard_process(config, source_name, 0, config_file, progress)
    else:
        with ThreadPoolExecutor(max_workers=source.processes) as pool:
            futures = [pool.submit(run_shard_process, config, source_name, k, config_file, progress)
                       for k in range(source.processes)]
            shards = [f.result() for f in futures]
        summary = merge_shards(shards)
        atomic_write_json(summaries_dir(config.state_dir) / f"{source_name}.json", summary)
    if merge_summary:
        write_merged(config.out, config.state_dir)
    return summary


def crawl(config: CrawlConfig, *, progress: ProgressFn | None = None, scheduler: str | None = None) -> Path | str:
    """Crawl every configured source (up to `parallel_sources` processes at once, or with a Dask `scheduler`
    address, every shard as a task on that cluster); returns the output dir.

    Every source is run even when one fails; then a `CrawlError` names each failed source.  A URL output is
    crawled into its local spill directory and its RAW files published there (`publish_raw`).
    """
    config, remote = _spill(config)
    config.validate()
    if scheduler is not None:
        from crawlers.cluster import check_scheduler

        check_scheduler(scheduler)  # a ConfigError before any source starts
    config.out.mkdir(parents=True, exist_ok=True)
    failures: list[CrawlError] = []
    with ThreadPoolExecutor(max_workers=max(1, config.parallel_sources)) as pool:
        futures = [pool.submit(_crawl_source, config, s.name, progress=progress, merge_summary=False,
                               scheduler=scheduler)
                   for s in config.sources]
        for fut in futures:
            try:
                fut.result()
            except CrawlError as exc:
                failures.append(exc)
                logger.error("%s", exc)
    write_merged(config.out, config.state_dir)
    if remote:
        publish_raw(config.out, remote)  # what was crawled, even when a source failed
    if failures:
        if len(failures) == 1:
            raise failures[0]
        names = ", ".join(f.source for f in failures)
        raise CrawlError(names, "\n".join(str(f) for f in failures))
    return remote or config.out


def read_summary(out: str | Path) -> dict[str, Any]:
    return json.loads(storage.read_text(storage.join(storage.location(out), SUMMARY_NAME)))
