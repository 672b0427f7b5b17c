"""Runs one real Scrapy crawl (in its own process: one reactor per process) against a 127.0.0.1 server and prints,
as one JSON line, what `crawlers.internals`' tricks rely on inside a running engine.

    python tests/crawlers/internals_probe.py BASE_URL
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time

import scrapy
from scrapy import signals
from scrapy.crawler import CrawlerProcess
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import DontCloseSpider
from scrapy.utils.defer import deferred_from_coro

from crawlers import internals

BASE = sys.argv[1]
FOUND: dict = {}


class ProbeSpider(scrapy.Spider):
    """Fetches one page through the scheduler (robots.txt is obeyed), queues three downloads behind the slot's
    delay and drains them, then ends "an image's handling" after the engine's idle check and nudges the engine."""

    name = "probe"
    custom_settings = {"ROBOTSTXT_OBEY": True, "DOWNLOAD_SLOTS": {"slow": {"delay": 30.0, "concurrency": 1}},
                       "LOG_LEVEL": "INFO", "TELNETCONSOLE_ENABLED": False, "REMOTE_CONTROL_ENABLED": False}
    pending: set = set()
    handled_at: float | None = None

    async def start(self):
        FOUND["root_level_at_start"] = logging.getLevelName(logging.root.level)
        yield scrapy.Request(f"{BASE}/page", callback=self.parse_page, meta={"handle_httpstatus_all": True})

    def parse_page(self, response):
        engine = self.crawler.engine
        FOUND["nextcall"] = type(getattr(getattr(engine, "_slot", None), "nextcall", None)).__name__
        robots = next(m for m in engine.downloader.middleware.middlewares
                      if isinstance(m, RobotsTxtMiddleware))
        parsers = getattr(robots, "_parsers", None)
        FOUND["robots_parsers"] = type(parsers).__name__
        FOUND["robots_parser_allowed"] = callable(getattr((parsers or {}).get(response.urljoin("/").split("/")[2]),
                                                          "allowed", None))
        self.pending.add("img")
        deferred_from_coro(self._sequence(engine))

    async def _sequence(self, engine):
        failed = []
        for i in range(4):  # the first goes out at once, the others wait behind the slot's delay in its queue
            request = scrapy.Request(f"{BASE}/q{i}", meta={"download_slot": "slow", "handle_httpstatus_all": True})
            d = deferred_from_coro(engine.download_async(request))
            d.addErrback(lambda f: failed.append(str(f.value)))
        await asyncio.sleep(0.3)
        FOUND["slot_queue_before_drain"] = sum(len(s.queue) for s in engine.downloader.slots.values())
        FOUND["drained"] = internals.drain_downloader(engine.downloader, lambda r: RuntimeError(f"drained {r.url}"))
        await asyncio.sleep(0.1)
        FOUND["drain_failures"] = sorted(failed)
        await asyncio.sleep(0.5)  # "an image's handling" ends after the idle check
        self.pending.discard("img")
        self.handled_at = time.monotonic()
        internals.nudge_engine(engine)


def main() -> None:
    process = CrawlerProcess({"LOG_LEVEL": "INFO"}, install_root_handler=True)
    crawler = process.create_crawler(ProbeSpider)

    def idle(spider):
        if spider.pending:
            raise DontCloseSpider

    def closed(spider, reason):
        FOUND["close_after_handled_s"] = time.monotonic() - spider.handled_at if spider.handled_at else None
        FOUND["root_level_after_start"] = logging.getLevelName(logging.root.level)

    crawler.signals.connect(idle, signal=signals.spider_idle)
    crawler.signals.connect(closed, signal=signals.spider_closed)
    process.crawl(crawler)
    internals.quiet_root_logger(crawler)
    process.start()
    print(json.dumps(FOUND))


if __name__ == "__main__":
    main()
