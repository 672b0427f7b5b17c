"""`max_seconds`: a source's wall-clock budget, kept to the second rather than "closed, then drained".

Scrapy's CLOSESPIDER_TIMEOUT closes the spider on time, but a close waits for every request already handed to the
downloader: downloads in flight (up to DOWNLOAD_TIMEOUT each) and requests queued behind DOWNLOAD_DELAY or
AutoThrottle delays.  So at the deadline the queued requests are failed with `LimitReached`, and the download
handler gives every download at most the time left.  What was fetched before is written when the spider closes;
a page whose images were cut stays unfinished in the store, so the next run fetches it again.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from scrapy.exceptions import IgnoreRequest

from crawlers import internals
from crawlers.fetch import error_kind

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

GRACE = 0.25  # s: downloads cut at the deadline end just after the deadline has been marked as passed


class LimitReached(IgnoreRequest):
    """A request not made, or cut short, because the source's `max_seconds` ran out (not a fetch error)."""


class Deadline:
    """When the source's `max_seconds` runs out, counted from the spider's opening like CLOSESPIDER_TIMEOUT."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.at: float | None = None  # time.monotonic() of the deadline, once started
        self.passed = False
        self._call = None

    def start(self, crawler) -> None:
        if self.seconds is None:
            return
        from twisted.internet import reactor  # late import: importing the reactor installs one

        self.at = time.monotonic() + self.seconds
        self._call = reactor.callLater(self.seconds, self._pass, crawler)

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()

    def _pass(self, crawler) -> None:
        self.passed = True
        engine = crawler.engine
        if engine is not None and engine.downloader is not None:
            drain_downloader(engine.downloader)

    def left(self) -> float | None:
        """Seconds left (<= 0 once passed); None without a limit."""
        return None if self.at is None else self.at - time.monotonic()

    def cuts(self, exc: BaseException) -> bool:
        """Whether a request failed because of the deadline: not made, or a download timed out at the cut."""
        return isinstance(exc, LimitReached) or (self.passed and error_kind(exc) == "timeout")


def time_left(crawler) -> float | None:
    deadline = getattr(crawler.spider, "deadline", None)
    return deadline.left() if isinstance(deadline, Deadline) else None


def drain_downloader(downloader) -> int:
    """Fail the requests waiting in download slot queues (behind download delays) with `LimitReached`."""
    return internals.drain_downloader(
        downloader, lambda request: LimitReached(f"{request.url}: not fetched, max_seconds reached"))


class DeadlineMixin:
    """HTTP(S) downloads that end by the deadline: one starting after it is not made, one starting before it gets
    at most the time left as its timeout, and one cut at the deadline fails with `LimitReached` (which is not
    retried, unlike a timeout).  Mixed into the transport's download handler (`crawlers.transport`) only for
    sources with `max_seconds`."""

    crawler: Crawler

    def _cap(self, request) -> None:
        left = time_left(self.crawler)
        if left is None:
            return
        if left <= 0:
            raise LimitReached(f"{request.url}: not fetched, max_seconds reached")
        timeout = request.meta.get("download_timeout") or self.crawler.settings.getfloat("DOWNLOAD_TIMEOUT")
        request.meta["download_timeout"] = min(timeout, left + GRACE)

    def _cut(self, exc: BaseException, request) -> BaseException:
        left = time_left(self.crawler)
        if left is not None and left <= 0 and error_kind(exc) == "timeout":
            return LimitReached(f"{request.url}: cut, max_seconds reached")
        return exc

    async def download_request(self, request):
        self._cap(request)
        try:
            return await super().download_request(request)
        except Exception as exc:
            cut = self._cut(exc, request)
            if cut is exc:
                raise
            raise cut from exc
