"""Spiders that start from lists instead of discovering pages: URL lists (`kind: urls`) and, through `ListSpider`,
web archives (`kind: warc`, `warc.py`).

There is nothing to discover, so `start()` walks the input and hands each (page, images) group straight to
`MMSpider.dispatch`: every image goes through the same downloader, middlewares, opt-out checks, size limits, writer
and crawl state as a news crawl's.  The walk waits while more than a window of images is in flight, so a list of
any length is read as fast as it is fetched, with bounded memory.  A process takes only the images whose host hash
is its own (`processes: N`, `urllist.host_shard`): one host's images are fetched by one process, so per-domain
concurrency and delays hold however many processes or cluster workers share the source.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from scrapy import Request
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet.defer import Deferred

from crawlers.extract.records import ImageRef
from crawlers.fetch import PageCtx
from crawlers.middlewares import CountingRobotsTxtMiddleware, PolicyDrop, TDMRepMiddleware
from crawlers.spiders.base import MMSpider
from crawlers.urllist import Columns, ListError, Reject, expand_paths, host_shard, read_list
from data_schemas import reasons as R
from data_schemas import row_id

logger = logging.getLogger(__name__)
MAX_LISTED_REJECTS = 1000  # rejected input rows named in the summary (all are counted)
WINDOW_PER_SLOT = 4  # images in flight per CONCURRENT_REQUESTS slot while the input is read
YIELD_EVERY = 256  # input rows read between two returns to the event loop


@dataclass(slots=True)
class Group:
    """One accounting unit of the crawl state (a URL-list row, or one page of an archive), with its images."""

    ctx: PageCtx
    refs: list[ImageRef]
    drop: str | None = None  # the whole group is opted out (reasons.OPT_OUT_PAGE / OPT_OUT_TDMREP)
    archived_page: str | None = None  # an archived page's URL: its robots.txt and TDMRep rules are checked too


class ListSpider(MMSpider):
    """Subclasses yield `Group`s and `Reject`s from `groups()`."""

    def groups(self) -> Iterator[Group | Reject]:
        raise NotImplementedError

    def owns(self, url: str) -> bool:
        return host_shard(url, self.shards) == self.shard

    def _referer(self, page_url: str, url: str) -> dict[str, str]:
        """The accounting key is `<page>#<id>`: the Referer is the page, and none when the list names no page."""
        return super()._referer(page_url, url) if page_url.split("#", 1)[0] else {}

    async def start(self):
        window = max(64, self.config.concurrency * WINDOW_PER_SLOT)
        try:
            items = self.groups()
            for n, item in enumerate(items):
                if n % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                if isinstance(item, Reject):
                    self.reject(item)
                    continue
                if not self._take(item):
                    continue
                while len(self.fetching) >= window and not self.closing:
                    await asyncio.sleep(0.005)
                if self._stopped():
                    break
                if item.archived_page and not item.drop:
                    item.drop = await self._page_policy(item.archived_page)
                    if item.drop == R.ROBOTS_UNREACHABLE:  # may change: the page stays unfinished for next run
                        self.count_drop(item.drop, len(item.refs))
                        continue
                self.count("pages")
                if item.drop:
                    self.drop_page(item.ctx, item.refs, item.drop)
                else:
                    self.dispatch(item.ctx, item.refs)
        except ListError as exc:  # the input itself is unreadable: the crawl fails, naming the file
            logger.error("%s", exc)
            print(f"input error: {exc}", file=sys.stderr)  # the stage's CrawlError shows the process's stderr
            self.crawler.stats.set_value("mmpipe/input_error", str(exc))
            self.closing = True
            deferred_from_coro(self.crawler.engine.close_spider_async(reason="input_error"))
        return
        yield  # an async generator that schedules nothing itself: images go straight to the downloader

    def _take(self, group: Group) -> bool:
        """Keep this process's images of the group; False when none are left or the group is done already."""
        group.refs = [ref for ref in group.refs if self.owns(ref.url)]
        if not group.refs:
            return False
        if self.config.incremental and self.state.page_done(group.ctx.url):
            self.count("pages_skipped_seen")
            return False
        return True

    def _stopped(self) -> bool:
        if self.closing or self.deadline.passed or "max_images" in self.limits_hit:
            return True
        limit = self.source.max_pages
        if limit is not None and self.pages_scheduled >= limit:
            self.hit_limit("max_pages")
            return True
        self.pages_scheduled += 1
        return False

    async def _page_policy(self, url: str) -> str | None:
        """What the live crawl's downloader would say of fetching an archived page: robots.txt (for our agent)
        and TDMRep's tdmrep.json, asked of the same middlewares (rules fetched once per host, as for images).
        The page itself is not fetched: the archive has it."""
        request = Request(url, meta={"mm_kind": "page"})
        for mw in self._page_policies:
            try:
                result = mw.process_request(request)
                if inspect.isawaitable(result) or isinstance(result, Deferred):
                    await maybe_deferred_to_future(result) if isinstance(result, Deferred) else await result
            except PolicyDrop as exc:
                return exc.reason
        return None

    @cached_property
    def _page_policies(self) -> list:
        kinds = (CountingRobotsTxtMiddleware, TDMRepMiddleware)
        return [mw for mw in self.crawler.engine.downloader.middleware.middlewares if isinstance(mw, kinds)]

    def reject(self, item: Reject) -> None:
        """An input row that cannot be a pair: counted by shard 0 only (every shard reads every row)."""
        if self.shard != 0:
            return
        self.count_drop(item.reason)
        listed = self.crawler.stats.get_value("mmpipe/input_rejects", [])
        if len(listed) < MAX_LISTED_REJECTS:
            listed.append(str(item))
            self.crawler.stats.set_value("mmpipe/input_rejects", listed)
            logger.warning("skipped %s", item)


class UrlListSpider(ListSpider):
    name = "mmpipe-urls"

    def groups(self) -> Iterator[Group | Reject]:
        src = self.source
        columns = Columns(url=src.url_col, caption=src.caption_col, page=src.page_col)
        for path in expand_paths(src.paths):
            for row in read_list(path, columns, fmt=src.input_format):
                if isinstance(row, Reject):
                    yield row
                    continue
                rid = row_id(row.page_url, row.url)
                ctx = PageCtx(url=f"{row.page_url}#{rid}", license=src.license, row_page_url=row.page_url,
                              provenance=row.provenance)
                yield Group(ctx, [ImageRef(row.url, [(row.caption, "list")] if row.caption else [])])
