"""What every mmpipe spider shares: page admission, drop/error counting, limits, lifecycle.

Subclasses discover pages and turn each into a `PageCtx` plus `ImageRef`s (from a page object), then hand them
to the spider's `ImageFetcher` (`self.images.dispatch`, `imagefetch.py`), which fetches each image once and
writes the rows straight to the `RawWriter` (no item pipeline hop per row: the crawl is I/O-bound and per-item
overhead shows at thousands of images per second).
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from typing import Any

import scrapy
from scrapy import signals
from scrapy.exceptions import DontCloseSpider
from scrapy.http import Response
from scrapy.utils.defer import deferred_from_coro

from crawlers.config import CrawlConfig, SourceConfig
from crawlers.extract.records import ImageRef
from crawlers.fetch import PageCtx, error_kind
from crawlers.middlewares import HostBackoff, PolicyDrop
from crawlers.spiders.deadline import Deadline
from crawlers.spiders.imagefetch import UNSAFE, ImageFetcher
from crawlers.state import CrawlState
from crawlers.writer import RawWriter
from data_schemas import Blocklist
from data_schemas import reasons as R

logger = logging.getLogger(__name__)


def shard_tag(shard: int, shards: int) -> str:
    """"" for a single-process source, ".1of2" for shard 1 of 2: part of lock, log and Parquet file names."""
    return "" if shards <= 1 else f".{shard}of{shards}"


def lock_file(state_dir: Path, source: str, tag: str) -> Path:
    return Path(state_dir) / f"{source}{tag}.lock"
PAGE_PRIORITY = 0
DISCOVERY_PRIORITY = -10


class MMSpider(scrapy.Spider):
    name = "mmpipe"
    handle_httpstatus_list = list(range(400, 600))  # error responses reach callbacks: they become rows/counts

    def __init__(self, *args: Any, config: CrawlConfig, source: SourceConfig, shard: int = 0, **kwargs: Any):
        super().__init__(*args, name=source.name, **kwargs)
        self.config, self.source = config, source
        self.shard, self.shards = shard, source.processes
        self.agent = (config.user_agent.split("/", 1)[0] or "mmpipe").strip()
        self.blocklist = Blocklist.load(config.blocklist) if config.blocklist else Blocklist()
        self.pages_scheduled = 0
        self.limits_hit: set[str] = set()  # max_pages / max_images / max_seconds / the discovery bounds
        self.discovery_made = 0
        self.deadline = Deadline(source.max_seconds)  # read by the download handler and BackoffMiddleware too
        self.closing = False

    @classmethod
    def from_crawler(cls, crawler, *args: Any, **kwargs: Any):
        spider = super().from_crawler(crawler, *args, **kwargs)
        cfg = spider.config
        name = spider.source.name
        spider.state = CrawlState(cfg.state_dir / f"{name}.sqlite", out_dir=cfg.out, owner=spider.owner_tag,
                                  lock_path=lambda owner: lock_file(cfg.state_dir, name, owner))
        spider.writer = RawWriter(out_dir=cfg.out, source=name + spider.owner_tag, state=spider.state,
                                  rows_per_file=cfg.rows_per_file, bytes_per_file=cfg.bytes_per_file,
                                  flush_seconds=cfg.flush_seconds, count=spider.count,
                                  on_failure=spider._write_failed)
        spider.images = ImageFetcher(spider)  # after the writer and the store, which it reads and writes
        crawler.signals.connect(spider._on_idle, signal=signals.spider_idle)
        crawler.signals.connect(spider._opened, signal=signals.spider_opened)
        crawler.signals.connect(spider._dropped, signal=signals.request_dropped)
        return spider

    @property
    def owner_tag(self) -> str:
        return shard_tag(self.shard, self.shards)

    def owns(self, url: str) -> bool:
        """With `processes: N`, each process crawls the pages whose URL hash falls in its shard."""
        return self.shards == 1 or zlib.crc32(url.encode()) % self.shards == self.shard

    # --- counting ------------------------------------------------------------------------------------------
    def count(self, key: str, n: int = 1) -> None:
        if n:
            self.crawler.stats.inc_value(f"mmpipe/{key}", n)

    def count_drop(self, reason: str, n: int = 1) -> None:
        self.count(f"drops/{reason}", n)

    def count_error(self, kind: str, n: int = 1) -> None:
        self.count(f"errors/{kind}", n)

    def hit_limit(self, name: str, n: int = 1) -> None:
        """A limit stopped `n` requests: named in `limits_hit`, counted in the summary's `limit_cuts`."""
        self.limits_hit.add(name)
        self.count(f"limit_cuts/{name}", n)

    def discovery_allowed(self, n: int = 1) -> bool:
        """Room for `n` more discovery documents under `max_discovery`; counts them when there is."""
        limit = self.source.max_discovery
        if limit is not None and self.discovery_made + n > limit:
            self.hit_limit("max_discovery", n)
            return False
        self.discovery_made += n
        self.count("discovery_requests", n)
        return True

    def cut_by_limit(self, exc: BaseException) -> bool:
        """A request not made, or a download cut, at the max_seconds deadline: counted as stopped, not as an
        error, and it resolves nothing (its page stays unfinished, so the next run fetches it again)."""
        if self.deadline.cuts(exc):
            self.count("stopped_at_limit")
            return True
        return False

    # --- pages ---------------------------------------------------------------------------------------------
    def page_allowed(self, url: str) -> bool:
        """Shard, incremental skip, blocklist and the max_pages budget, checked before a page request is made."""
        if not self.owns(url):
            return False
        if self.config.incremental and self.state.page_done(url):
            self.count("pages_skipped_seen")
            return False
        if self.blocklist.blocks_url(url):
            self.count_drop(R.BLOCKLISTED_URL)
            self.count(f"pages_refused/{R.BLOCKLISTED_URL}")
            return False
        if self.source.max_pages is not None and self.pages_scheduled >= self.source.max_pages:
            self.hit_limit("max_pages")
            return False
        self.pages_scheduled += 1
        return True

    def page_error(self, failure) -> None:
        exc = failure.value
        if self.cut_by_limit(exc) or isinstance(exc, HostBackoff):  # (backoff.skipped counts the latter)
            return
        if isinstance(exc, PolicyDrop):
            # a page refused before fetching: its images are unknown, so it counts once, and is listed
            if exc.reason in UNSAFE:
                self.count_error(exc.reason)
            else:
                self.count_drop(exc.reason)
                self.count(f"pages_refused/{exc.reason}")
                refused = self.crawler.stats.get_value("mmpipe/refused_urls", {})
                urls = refused.setdefault(exc.reason, [])
                if len(urls) < 1000:
                    urls.append(failure.request.url)
                self.crawler.stats.set_value("mmpipe/refused_urls", refused)
            logger.info("%s", exc)
            return
        kind = error_kind(exc)
        self.count_error(f"page_{kind}")
        logger.warning("page %s failed: %s (%s)", failure.request.url, kind, exc)

    def page_status_ok(self, response: Response) -> bool:
        if response.status >= 400:
            self.count_error("page_http_error")
            logger.warning("page %s: HTTP %d", response.url, response.status)
            return False
        return True

    def drop_page(self, ctx: PageCtx, refs: list[ImageRef], reason: str) -> None:
        """An opted-out page: every pair on it is counted under `reason`, the page is done without rows."""
        self.count_drop(reason, max(1, len(refs)))
        self.writer.expect(ctx.url, 0)

    # --- lifecycle -----------------------------------------------------------------------------------------
    def _write_failed(self, exc: Exception) -> None:
        self.count_error("write_failed")
        self.crawler.stats.set_value("mmpipe/write_error", f"{type(exc).__name__}: {exc}")
        engine = self.crawler.engine
        if engine is not None and engine.running and not self.closing:
            self.closing = True  # unfinished pages stay unfinished in the store: the next run redoes them
            deferred_from_coro(engine.close_spider_async(reason="write_failed"))

    def _opened(self, spider) -> None:
        if spider is self:
            self.deadline.start(self.crawler)
            if self.config.allow_private or self.config.private_networks:
                logger.warning("the private-address refusal is lifted for this crawl (%s)",
                               "allow_private" if self.config.allow_private
                               else "private_networks: " + ", ".join(self.config.private_networks))

    def _dropped(self, request, spider=None) -> None:
        """The scheduler's duplicate filter dropped a request.  A redirect back to a URL of its own chain is a
        redirect loop: counted as the page's error (`page_redirect_loop`), which Scrapy would drop silently."""
        if request.url in (request.meta.get("redirect_urls") or ()):
            self.count_error("page_redirect_loop")
            logger.warning("page %s: redirect loop (%s)", request.meta["redirect_urls"][0],
                           " -> ".join([*request.meta["redirect_urls"], request.url]))

    def _on_idle(self, spider) -> None:
        if spider is self:
            self.writer.maybe_flush()
            if self.images.busy:  # a finished download whose handling has not run yet: not idle
                raise DontCloseSpider
            self.on_idle()

    def on_idle(self) -> None:
        """Subclasses schedule their next discovery phase here (raise DontCloseSpider after scheduling)."""

    def closed(self, reason: str) -> None:
        self.writer.close()
        self.count("pages_incomplete", self.writer.pending_pages())
        self.deadline.stop()
        if reason == "closespider_timeout" or self.deadline.passed:
            self.limits_hit.add("max_seconds")
        self.crawler.stats.set_value("mmpipe/limit_hit", bool(self.limits_hit))
        self.crawler.stats.set_value("mmpipe/limits_hit", sorted(self.limits_hit))
        self.crawler.stats.set_value("mmpipe/files_written", list(self.writer.files))
        self.crawler.stats.set_value("mmpipe/duplicates_skipped", self.writer.duplicates_skipped)
        self.crawler.stats.set_value("mmpipe/store", self.state.counts())
        self.state.close()
