"""A spider's images: admission, reuse (memory cache, the writer's buffer, the crawl store), download, and rows.

Images go straight to Scrapy's downloader, the way Scrapy's own media pipelines do.  Every downloader middleware
still applies (robots.txt, opt-outs, address checks, backoff, retries, redirects, stats, timeouts); the scheduler
and the spider middlewares, which cost a visible share of Scrapy's CPU per request (`benchmarks/scrapy_floor.py
--via download`, BENCHMARKS.md), do not.  A kill loses nothing more than before: queued image requests were only
ever in memory, and a page stays unfinished in the crawl state until every one of its images is written.
Queued downloads count as the downloader's active requests, so the engine takes no new page until they drain:
images come first, pages complete (and become resumable) sooner, and memory stays flat.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from scrapy.http import Response
from scrapy.utils.defer import deferred_from_coro

from crawlers.extract.records import ImageRef
from crawlers.fetch import ImageCache, ImageResult, PageCtx, classify_image, error_kind, make_row
from crawlers.internals import SafeUrlRequest, nudge_engine
from crawlers.middlewares import PRIVATE_ADDRESS, PRIVATE_CONNECTED, HostBackoff, PolicyDrop
from crawlers.writer import read_stored_image
from data_schemas import reasons as R

if TYPE_CHECKING:
    from crawlers.spiders.base import MMSpider

logger = logging.getLogger(__name__)
UNSAFE = (PRIVATE_ADDRESS, PRIVATE_CONNECTED)  # address refusals: errors, not drops (nothing opted out)
_TRANSIENT = (R.ROBOTS_UNREACHABLE,)  # refusals that may change: an image's pages stay unfinished for the next run


class ImageFetcher:
    """The images of one spider's pages, each fetched once per crawl: the spider hands it a page's pairs
    (`dispatch`); it admits them (blocklist, earlier drops, `max_images`), reuses an image already fetched, or
    downloads it, and writes one row per (page, image) pair."""

    def __init__(self, spider: MMSpider):
        self.spider = spider
        self.cache = ImageCache(spider.config.image_cache_bytes)
        self.waiting: dict[str, list[tuple[PageCtx, ImageRef]]] = {}  # image URL -> pairs waiting for it
        self.fetching: set[str] = set()  # image URLs whose download or its handling is not finished
        self.fetches: set = set()  # their Deferreds, held: the event loop holds tasks weakly
        self.dropped: dict[str, str] = {}  # image URL -> the drop reason it got
        self.requested = 0
        self.send_referer = spider.settings.getbool("REFERER_ENABLED")  # settings are frozen while it runs

    @property
    def busy(self) -> bool:
        """A download, or the handling of a finished one, has not ended yet: the spider is not idle."""
        return bool(self.fetching)

    def dispatch(self, ctx: PageCtx, refs: list[ImageRef]) -> None:
        """Register the page's pairs and start fetching the images not already fetched or pending."""
        spider, writer = self.spider, self.spider.writer
        writer.expect(ctx.url, len(refs))
        limit = spider.source.max_images
        for ref in refs:
            if spider.blocklist.blocks_url(ref.url):
                self._drop_pair(ctx, R.BLOCKLISTED_URL)
                continue
            if ref.url in self.dropped:
                self._drop_pair(ctx, self.dropped[ref.url])
                continue
            result = self._lookup(ref.url)
            if result is not None:
                self._emit(ctx, ref, result, first=False)
                continue
            if ref.url in self.waiting:
                self.waiting[ref.url].append((ctx, ref))
                continue
            if limit is not None and self.requested >= limit:
                spider.hit_limit("max_images")  # the page stays incomplete, so the next run fetches it again
                continue
            self.waiting[ref.url] = [(ctx, ref)]
            self.requested += 1
            self._fetch(ref.url, page_url=ctx.url)

    def _lookup(self, url: str) -> ImageResult | None:
        """An image fetched before: in memory, in the writer's buffer, or in a Parquet file the store locates."""
        result = self.cache.get(url)
        if result is not None:
            return result
        row = self.spider.writer.buffered_image(url)
        if row is None:
            loc = self.spider.state.image_location(url)
            row = read_stored_image(*loc) if loc else None
            if row is not None:
                self.spider.count("images_reused_stored")
        if row is None:
            return None
        result = ImageResult(row["image_bytes"], row["image_mime"], row["http_status"], row["fetch_error"])
        self.cache.put(url, result)
        return result

    # --- download --------------------------------------------------------------------------------------------
    def _fetch(self, url: str, *, page_url: str) -> None:
        request = SafeUrlRequest(url, dont_filter=True, headers=self._referer(page_url, url),
                                 meta={"download_maxsize": self.spider.config.max_image_bytes, "mm_image": url,
                                       "mm_kind": "image"})
        self.fetching.add(url)
        fetch = deferred_from_coro(self._download(request))
        self.fetches.add(fetch)  # the event loop holds tasks weakly
        fetch.addBoth(lambda _: self.fetches.discard(fetch))

    def _referer(self, page_url: str, url: str) -> dict[str, str]:
        """What Scrapy's RefererMiddleware would send for a request made from the page (never https -> http).
        A URL list's accounting key is `<page>#<id>`: the Referer is the page, and none when the list names no
        page."""
        page = page_url.split("#", 1)[0]
        if not self.send_referer or not page or (page_url.startswith("https:") and url.startswith("http:")):
            return {}
        return {"Referer": page}

    async def _download(self, request: SafeUrlRequest) -> None:
        url = request.meta["mm_image"]
        engine = self.spider.crawler.engine
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
            self.spider.count("spider_exceptions")
            logger.exception("handling image %s failed", request.url)
        finally:
            self.fetching.discard(url)
            if not self.fetching:
                nudge_engine(engine)  # the last image is handled: the engine may be idle now

    # --- outcome ---------------------------------------------------------------------------------------------
    def parse_image(self, response: Response) -> None:
        url = response.meta["mm_image"]
        blocklist = self.spider.blocklist
        reason, result = classify_image(response.status, response.headers, response.body, agent=self.spider.agent)
        if (reason is None and result.body and blocklist.sha256
                and blocklist.blocks_sha256(hashlib.sha256(result.body).hexdigest())):
            reason = R.BLOCKLISTED_URL  # taken-down bytes, whatever URL they are served from now
        self._resolve(url, reason, result)

    def image_error(self, url: str, exc: BaseException) -> None:
        spider = self.spider
        if spider.cut_by_limit(exc) or isinstance(exc, HostBackoff):
            self.waiting.pop(url, None)  # its pages stay unfinished: the next run fetches them again
            return
        if isinstance(exc, PolicyDrop) and exc.reason in _TRANSIENT:
            spider.count_drop(exc.reason, len(self.waiting.pop(url, [])))  # pages unfinished, as above
            return
        if isinstance(exc, PolicyDrop):
            if exc.reason in UNSAFE:
                spider.count_error(exc.reason)
            self._resolve(url, exc.reason, None)
            return
        kind = error_kind(exc)
        logger.info("image %s failed: %s (%s)", url, kind, exc)
        self._resolve(url, None, ImageResult(None, None, None, kind))

    def _resolve(self, url: str, reason: str | None, result: ImageResult | None) -> None:
        waiting = self.waiting.pop(url, [])
        if reason is not None:
            self.dropped[url] = reason
            for ctx, _ref in waiting:
                self._drop_pair(ctx, reason)
            return
        assert result is not None
        if result.error:
            self.spider.count_error(f"image_{result.error}")
        else:
            self.spider.count("images")
            self.spider.count("image_bytes", result.size)
        self.cache.put(url, result)
        for i, (ctx, ref) in enumerate(waiting):
            self._emit(ctx, ref, result, first=i == 0)

    def _drop_pair(self, ctx: PageCtx, reason: str) -> None:
        if reason not in UNSAFE:
            self.spider.count_drop(reason)
        self.spider.writer.drop(ctx.url)

    def _emit(self, ctx: PageCtx, ref: ImageRef, result: ImageResult, *, first: bool) -> None:
        source = self.spider.source
        row = make_row(source=source.name, kind=source.kind, ctx=ctx, ref=ref, result=result)
        self.spider.writer.add(row, first_fetch=first, page=ctx.url)
        self.spider.writer.maybe_flush()
