"""News spider: feeds and sitemaps first, then articles, then home/section pages with same-site link following.

Discovery runs in two phases so that the output does not depend on timing: phase 1 fetches every feed and
sitemap (recursively through sitemap indexes) and collects what they say about each article; phase 2 requests
the articles and the start pages.  An article therefore always carries every feed/sitemap caption for its
images, whichever route reached it first.  A source without configured sitemaps takes the `Sitemap:` lines of
its hosts' robots.txt instead (`sitemaps_from_robots`), in phase 1 too.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from scrapy.exceptions import DontCloseSpider
from scrapy.http import Request, Response, TextResponse
from scrapy.utils.sitemap import sitemap_urls_from_robots

from crawlers.extract.article import extract_article
from crawlers.extract.feeds import parse_feed, parse_sitemap
from crawlers.extract.records import FeedEntry, ImageRef
from crawlers.extract.text import find_credit
from crawlers.fetch import PageCtx
from crawlers.internals import SafeUrlRequest
from crawlers.optout import page_opt_out
from crawlers.spiders.base import DISCOVERY_PRIORITY, PAGE_PRIORITY, MMSpider
from data_schemas import reasons as R

logger = logging.getLogger(__name__)
# links that are never HTML pages: feeds, sitemaps, media, documents
_NOT_PAGE = re.compile(r"\.(?:xml|rss|atom|json|txt|pdf|jpe?g|png|gif|webp|avif|svg|ico|mp[34]|webm|zip|gz|css|js)$",
                       re.IGNORECASE)


class NewsSpider(MMSpider):
    name = "mmpipe-news"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.known: dict[str, FeedEntry] = {}  # article URL -> what feeds/sitemaps said about it
        self.phase = 1
        src = self.source
        self.hosts = {h.lower() for h in src.allowed_domains} or {
            urlsplit(u).hostname for u in src.feeds + src.sitemaps + src.start_urls if urlsplit(u).hostname}
        self.article_re = re.compile(src.article_pattern) if src.article_pattern else None

    async def start(self):
        for req in [*self._discoveries(self.source.feeds, self.parse_feed),
                    *self._discoveries(self.source.sitemaps, self.parse_sitemap)]:
            yield req
        robots = self._robots_requests()
        for req in robots:
            yield req
        if not self.source.feeds and not self.source.sitemaps and not robots:
            for req in self._phase2():
                yield req

    def _discoveries(self, urls: list[str], callback, *, depth: int = 0) -> list[Request]:
        """Requests for feeds or sitemaps (`depth`: sitemap-index nesting), within `max_discovery`."""
        return [Request(url, callback=callback, errback=self.page_error, priority=DISCOVERY_PRIORITY,
                        meta={"mm_kind": "discovery", "mm_sitemap_depth": depth,
                              "download_maxsize": self.config.max_page_bytes})
                for url in urls if self.discovery_allowed()]

    def _robots_requests(self) -> list[Request]:
        """robots.txt of each host of the feeds and start pages, for its Sitemap: lines, when no sitemap is
        configured.  With robots.txt obeyed, the middleware answers from the copy it fetches anyway."""
        if self.source.sitemaps or not self.source.sitemaps_from_robots:
            return []
        origins = dict.fromkeys(f"{p.scheme}://{p.netloc}" for p in map(urlsplit, self.source.feeds
                                                                        + self.source.start_urls) if p.netloc)
        if not self.discovery_allowed(len(origins)):
            return []
        return [Request(f"{origin}/robots.txt", callback=self.parse_robots, errback=self.page_error,
                        priority=DISCOVERY_PRIORITY, dont_filter=True,
                        meta={"mm_kind": "robots", "mm_robots_sitemaps": True, "dont_obey_robotstxt": True,
                              "mm_policy_file": True, "download_maxsize": self.config.max_page_bytes})
                for origin in origins]

    # --- phase 1: feeds and sitemaps -------------------------------------------------------------------
    def parse_robots(self, response: Response):
        if response.status >= 400:  # no robots.txt: no sitemaps, and nothing wrong
            return
        yield from self._discoveries(list(dict.fromkeys(sitemap_urls_from_robots(response.body,
                                                                                  base_url=response.url))),
                                     self.parse_sitemap)

    def parse_feed(self, response: Response):
        if self.page_status_ok(response):
            for entry in parse_feed(response.url, response.body):
                self._remember(entry)

    def parse_sitemap(self, response: Response):
        if not self.page_status_ok(response):
            return
        page = parse_sitemap(response.url, response.body, keep=self.owns if self.shards > 1 else None)
        depth = response.meta.get("mm_sitemap_depth", 0) + 1
        limit = self.source.max_sitemap_depth
        if page.sitemaps and limit is not None and depth > limit:  # an index nested deeper than any real site's
            self.hit_limit("max_sitemap_depth", len(page.sitemaps))
        else:
            yield from self._discoveries(page.sitemaps, self.parse_sitemap, depth=depth)
        for entry in page.entries:
            self._remember(entry)

    def _remember(self, entry: FeedEntry) -> None:
        old = self.known.get(entry.link)
        if old is None:
            self.known[entry.link] = entry
            return
        old.title = old.title or entry.title
        old.published_at = old.published_at or entry.published_at
        by_url = {ref.url: ref for ref in old.images}
        for ref in entry.images:
            if ref.url in by_url:
                by_url[ref.url].merge(ref)
            else:
                old.images.append(ref)

    def on_idle(self) -> None:
        if self.phase == 1:
            self.phase = 2
            scheduled = 0
            for req in self._phase2():
                self.crawler.engine.crawl(req)
                scheduled += 1
            if scheduled:
                raise DontCloseSpider

    # --- phase 2: articles and start pages ---------------------------------------------------------------
    def _phase2(self):
        self.phase = 2
        for url in self.known:
            req = self._page_request(url, depth=self.source.max_depth)  # feed articles: no link following
            if req is not None:
                yield req
        for url in self.source.start_urls:
            if not self.discovery_allowed():
                break
            yield Request(url, callback=self.parse_page, errback=self.page_error, priority=DISCOVERY_PRIORITY,
                          meta={"mm_kind": "listing", "mm_depth": 0,
                                "download_maxsize": self.config.max_page_bytes})

    def _page_request(self, url: str, *, depth: int) -> Request | None:
        if not self.page_allowed(url):
            return None
        return SafeUrlRequest(url, callback=self.parse_page, errback=self.page_error, priority=PAGE_PRIORITY,
                       meta={"mm_kind": "page", "mm_depth": depth, "download_maxsize": self.config.max_page_bytes})

    def parse_page(self, response: Response):
        if not self.page_status_ok(response):
            return
        if not _is_html(response):
            self.count_error("page_not_html")
            return
        depth = response.meta.get("mm_depth", 0)
        follow = self.source.follow_links and depth < self.source.max_depth
        # the decoded text that Scrapy (MetaRefreshMiddleware among others) uses anyway, which also honours the
        # charset of the Content-Type header, as browsers do; the bytes where Scrapy did not see HTML
        body = response.text if isinstance(response, TextResponse) else response.body
        page = extract_article(response.url, body, agent=self.agent, page_text=self.source.page_text, links=follow)
        feed = self.known.get(response.url) or self.known.get(response.request.url)
        is_article = self._is_article(page.url) if self.article_re is not None else page.is_article
        if feed is not None or is_article:
            self.count("pages")
            self._article(response, page, feed)
        else:
            self.count("listing_pages")
        if follow:
            yield from self._follow(page.links, depth + 1)

    def _is_article(self, url: str) -> bool:
        return bool(self.article_re and self.article_re.search(urlsplit(url).path))

    def _follow(self, links: list[str], depth: int):
        for url in links:
            parts = urlsplit(url)
            if parts.hostname not in self.hosts or url in self.known or _NOT_PAGE.search(parts.path):
                continue
            if self.article_re is not None and not self._is_article(url):
                if depth < self.source.max_depth and self.discovery_allowed():  # a listing, not a max_pages page
                    yield Request(url, callback=self.parse_page, errback=self.page_error,
                                  priority=DISCOVERY_PRIORITY, meta={"mm_kind": "listing", "mm_depth": depth,
                                                                     "download_maxsize": self.config.max_page_bytes})
                continue
            req = self._page_request(url, depth=depth)
            if req is not None:
                yield req

    def _article(self, response: Response, page, feed: FeedEntry | None):
        redirected_from = (response.meta.get("redirect_urls") or [None])[0]
        if redirected_from and redirected_from != response.url:
            self.writer.expect(redirected_from, 0)  # done under the URL we will find again next time too
        refs = _merge_feed(page.images, feed)
        ctx = PageCtx(url=response.url, title=page.title or (feed.title if feed else None), lang=page.lang,
                      published_at=page.published_at or (feed.published_at if feed else None),
                      license=page.license or self.source.license)
        reason, directives = page_opt_out(response.headers, agent=self.agent, meta_robots=page.robots,
                                          meta_tdm_reserved=page.tdm_reservation)
        if reason is not None:
            self.drop_page(ctx, refs, reason)
            return
        ctx.opt_out = tuple(sorted(d for d in directives if d.startswith("no")))
        if self.source.page_text:
            for ref in refs:  # feed-only images get the page title too
                ref.add(ctx.title, "title")
        if self.source.teasers == "emit":
            refs = refs + page.teasers  # rows of the linked pages, accounted to this one
        elif page.teasers:
            self.count_drop(R.TEASER_IMAGE, len(page.teasers))
        self.images.dispatch(ctx, refs)


def _merge_feed(refs: list[ImageRef], feed: FeedEntry | None) -> list[ImageRef]:
    """The page's images with feed/sitemap captions added; feed-only images are kept as the article's too.

    Feeds and sitemaps syndicate the page's own captions: a feed text that repeats a text already found on the
    page for that image adds nothing and is not recorded again."""
    if feed is None or not feed.images:
        return refs
    by_url = {ref.url: ref for ref in refs}
    for fref in feed.images:
        ref = by_url.get(fref.url)
        if ref is not None:
            texts = {text for text, _ in ref.candidates}
            for text, origin in fref.candidates:
                if text not in texts:
                    ref.add(text, origin)
                    ref.credit = ref.credit or fref.credit or find_credit(text)
        else:
            extra = ImageRef(fref.url, list(fref.candidates),
                             fref.credit or next((find_credit(t) for t, _ in fref.candidates if find_credit(t)), None))
            refs.append(extra)
            by_url[fref.url] = extra
    return refs


def _is_html(response: Response) -> bool:
    ctype = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
    return "html" in ctype or (not ctype and b"<html" in response.body[:2048].lower())
