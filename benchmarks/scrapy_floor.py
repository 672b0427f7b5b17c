"""Scrapy's own floor: a bare spider that fetches a list of image URLs and does nothing else.

    python benchmarks/scrapy_floor.py URL_FILE [--part K --parts N] [--concurrency 128] [--settings bare|ours]
                                      [--via scheduler|download]

No middlewares beyond download timeouts, no item pipeline, no stats, no robots.txt, no parsing, no writing: what
any Scrapy-based crawler pays per request before it does its own work.  `bench_crawl.py` runs N of these in
parallel on the same URLs as img2dataset, so the report shows how much of our gap to img2dataset is Scrapy's and
how much is ours.  `--settings ours` runs the same spider under our crawl's Scrapy settings (middlewares, stats,
robots.txt, dupefilter, transport): Scrapy's cost per request as we configure it, still without our spider's work.
`--via download` hands the requests straight to the downloader (`engine.download_async`, as our spiders fetch
images: crawlers/spiders/imagefetch.py) instead of yielding them through the scheduler and spider middlewares.
Prints one JSON line: {"images", "bytes", "wall_s", "cpu_s"}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.utils.defer import deferred_from_coro

# What a user sets to crawl their own site over a fast link, in ordinary config fields and Scrapy settings the
# safety policy allows (crawlers/README.md "Tuning"): no AutoThrottle, no Referer header, no per-request header-size
# statistics (the summary's `requests` count is then 0).  Everything else is the configuration users run.
OWN_SITE_TUNING = {"autothrottle": False, "scrapy_settings": {"REFERER_ENABLED": False, "DOWNLOADER_STATS": False}}


class FloorSpider(scrapy.Spider):
    name = "floor"
    urls: list[str] = []
    via = "scheduler"
    images = 0
    nbytes = 0

    async def start(self):
        if self.via == "download":
            self.fetches = [deferred_from_coro(self._fetch(url)) for url in self.urls]  # the downloader queues them
            return
        for url in self.urls:
            yield scrapy.Request(url, callback=self.parse, dont_filter=True)

    async def _fetch(self, url: str) -> None:
        self.parse(await self.crawler.engine.download_async(scrapy.Request(url, dont_filter=True)))

    def parse(self, response):
        FloorSpider.images += 1
        FloorSpider.nbytes += len(response.body)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url_file", type=Path)
    ap.add_argument("--part", type=int, default=0)
    ap.add_argument("--parts", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=128)
    ap.add_argument("--handler", choices=["twisted", "aiohttp"], default="aiohttp",
                    help="aiohttp (crawlers.transport, our default) or Twisted HTTP/1.1 (Scrapy's default)")
    ap.add_argument("--settings", choices=["bare", "ours"], default="bare")
    ap.add_argument("--via", choices=["scheduler", "download"], default="scheduler")
    args = ap.parse_args()
    urls = args.url_file.read_text().split()
    FloorSpider.via = args.via
    FloorSpider.urls = urls[args.part::args.parts]
    if args.settings == "ours":
        return _run(_our_settings(urls[0], args.concurrency, args.handler))
    from crawlers.transport import download_handlers

    process = CrawlerProcess({
        "DOWNLOAD_HANDLERS": download_handlers(args.handler, deadline=False),
        "LOG_LEVEL": "ERROR", "ROBOTSTXT_OBEY": False, "TELNETCONSOLE_ENABLED": False, "REMOTE_CONTROL_ENABLED": False,
        "COOKIES_ENABLED": False, "CONCURRENT_ITEMS": 1, "CONCURRENT_REQUESTS": args.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": args.concurrency, "DOWNLOAD_DELAY": 0, "AUTOTHROTTLE_ENABLED": False,
        "DOWNLOAD_MAXSIZE": 0, "DOWNLOAD_WARNSIZE": 0,
        "DOWNLOADER_MIDDLEWARES_BASE": {
            "scrapy.downloadermiddlewares.downloadtimeout.DownloadTimeoutMiddleware": 350},
        "SPIDER_MIDDLEWARES_BASE": {}, "EXTENSIONS_BASE": {"scrapy.extensions.corestats.CoreStats": 0},
        "STATS_CLASS": "scrapy.statscollectors.DummyStatsCollector",
        "DUPEFILTER_CLASS": "scrapy.dupefilters.BaseDupeFilter",
    })
    return _run(process)


def _our_settings(url: str, concurrency: int, transport: str) -> CrawlerProcess:
    from crawlers.config import CrawlConfig, SourceConfig
    from crawlers.settings import scrapy_settings

    source = SourceConfig(name="floor", kind="news", sitemaps=[url])
    config = CrawlConfig(sources=[source], out=Path("/nonexistent"), allow_private=True,
                         concurrency=concurrency, per_domain_concurrency=concurrency, log_level="ERROR",
                         transport=transport, **OWN_SITE_TUNING)
    settings = scrapy_settings(config, source)
    settings.pop("EXTENSIONS")  # the progress reporter expects our spider
    return CrawlerProcess(settings)


def _run(process: CrawlerProcess) -> int:
    t, c = time.perf_counter(), time.process_time()
    process.crawl(FloorSpider)
    process.start()
    print(json.dumps({"images": FloorSpider.images, "bytes": FloorSpider.nbytes, "wall_s": time.perf_counter() - t,
                      "cpu_s": time.process_time() - c}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
