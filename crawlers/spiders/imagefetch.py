"""How a spider fetches its images: straight to Scrapy's downloader, the way Scrapy's own media pipelines do.

Every downloader middleware still applies (robots.txt, opt-outs, address checks, backoff, retries, redirects,
stats, timeouts); the scheduler and the spider middlewares, which cost ~11% of Scrapy's CPU per request
(`benchmarks/scrapy_floor.py --via download`), do not.  A kill loses nothing more than before: queued image requests
were only ever in memory, and a page stays unfinished in the crawl state until every one of its images is written.
Queued downloads count as the downloader's active requests, so the engine takes no new page until they drain:
images come first, pages complete (and become resumable) sooner, and memory stays flat.
"""

from __future__ import annotations

import logging
from functools import cached_property

from scrapy.utils.defer import deferred_from_coro

from crawlers.spiders.safeurl import SafeUrlRequest

logger = logging.getLogger(__name__)


class DirectImageFetch:
    """Mixed into `MMSpider`, whose ``waiting`` / ``fetching`` / ``fetches`` / ``parse_image`` / ``image_error`` it
    uses."""

    def _fetch_image(self, url: str, *, page_url: str) -> None:
        request = SafeUrlRequest(url, dont_filter=True, headers=self._referer(page_url, url),
                          meta={"download_maxsize": self.config.max_image_bytes, "mm_image": url, "mm_kind": "image"})
        self.fetching.add(url)
        fetch = deferred_from_coro(self._image(request))
        self.fetches.add(fetch)  # the event loop holds tasks weakly
        fetch.addBoth(lambda _: self.fetches.discard(fetch))

    @cached_property
    def _send_referer(self) -> bool:  # read once: settings are frozen while the spider runs
        return self.settings.getbool("REFERER_ENABLED")

    def _referer(self, page_url: str, url: str) -> dict[str, str]:
        """What Scrapy's RefererMiddleware would send for a request made from the page (never https -> http)."""
        if not self._send_referer or (page_url.startswith("https:") and url.startswith("http:")):
            return {}
        return {"Referer": page_url.split("#", 1)[0]}

    async def _image(self, request: SafeUrlRequest) -> None:
        url = request.meta["mm_image"]
        engine = self.crawler.engine
        try:
            if engine is None or engine.spider is None:  # closed meanwhile: the page stays unfinished for next run
                self.waiting.pop(url, None)
                return
            try:
                response = await engine.download_async(request)
            except Exception as exc:  # noqa: BLE001 - every failure resolves the image (error row or drop)
                self.image_error(url, exc)
            else:
                self.parse_image(response)
        except Exception:  # a bug of ours: logged and counted like a failing Scrapy callback, never silent
            self.count("spider_exceptions")
            logger.exception("handling image %s failed", request.url)
        finally:
            self.fetching.discard(url)
            if not self.fetching:
                self._engine_may_idle(engine)

    @staticmethod
    def _engine_may_idle(engine) -> None:
        """The last image is handled: let the engine look for idleness now.  An idle check that ran between the
        download's end and its handling found `fetching` non-empty and kept the spider open (`MMSpider._on_idle`);
        without this nudge the engine would only look again at its 5-s heartbeat.  (Scrapy's engine nudges itself
        the same way after each download; there is no public call for it.)"""
        slot = getattr(engine, "_slot", None)
        if slot is not None and getattr(slot, "nextcall", None) is not None:
            slot.nextcall.schedule()
