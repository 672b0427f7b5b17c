"""Progress lines from a source process: one JSON object per line on stdout, read by `crawlers.stage`."""

from __future__ import annotations

import json
import sys

from scrapy import signals
from twisted.internet import task

PROGRESS_KEYS = ("pages", "posts", "images", "image_bytes", "rows", "discovery_requests")


def emit(event: str, **data) -> None:
    sys.stdout.write(json.dumps({"event": event, **data}, default=str) + "\n")
    sys.stdout.flush()


class ProgressReporter:
    def __init__(self, crawler):
        self.crawler = crawler
        self.interval = crawler.settings.getfloat("MMPIPE_PROGRESS_INTERVAL", 2.0)
        self.loop: task.LoopingCall | None = None
        crawler.signals.connect(self.opened, signal=signals.spider_opened)
        crawler.signals.connect(self.closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def snapshot(self) -> dict:
        stats = self.crawler.stats
        return {k: stats.get_value(f"mmpipe/{k}", 0) for k in PROGRESS_KEYS}

    def tick(self) -> None:
        emit("progress", source=self.crawler.spider.name, **self.snapshot())

    def opened(self, spider) -> None:
        self.loop = task.LoopingCall(self.tick)
        self.loop.start(self.interval, now=False)

    def closed(self, spider, reason) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
