"""Mastodon, Bluesky and feed-only spiders: API/feed pages in, posts with image attachments out.

A post is a "page" for accounting: it is done once all its rows are published, so resumes and re-crawls skip it.
Timelines are always paged again from the newest end (bounded by max_pages): that is how new posts are found.
Paging is bounded by default: a timeline stops after `max_stale_pages` pages in a row that bring no post it has not
seen in this run (a server that repeats itself), and a source after `max_api_pages` API pages.
"""

from __future__ import annotations

from urllib.parse import quote

from scrapy.http import Request, Response

from crawlers.extract.feeds import parse_feed
from crawlers.extract.records import SocialPost
from crawlers.extract.social import parse_bluesky, parse_mastodon, with_query
from crawlers.fetch import PageCtx
from crawlers.spiders.base import DISCOVERY_PRIORITY, MMSpider
from data_schemas import reasons as R


class SocialSpider(MMSpider):
    """Shared paging and post handling; subclasses give the first API URLs and the page object."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.posts_seen: set[str] = set()
        self.items_seen: set[str] = set()  # every post URL an API page listed, with images or not
        self.api_pages = 0

    def first_urls(self) -> list[str]:
        raise NotImplementedError

    def parse_api(self, url: str, response: Response):
        raise NotImplementedError

    async def start(self):
        for url in self.first_urls():
            req = self._api_request(url)
            if req is not None:
                yield req

    def _api_request(self, url: str, *, stale: int = 0) -> Request | None:
        """The next API page; `stale`: pages in a row of this timeline that brought no new post."""
        src = self.source
        for name, limit in (("max_pages", src.max_pages), ("max_api_pages", src.max_api_pages)):
            if limit is not None and self.api_pages >= limit:
                self.hit_limit(name)
                return None
        if not self.discovery_allowed():
            return None
        self.api_pages += 1
        return Request(url, callback=self.parse_timeline, errback=self.page_error, priority=DISCOVERY_PRIORITY,
                       headers={"Accept": "application/json"},
                       meta={"mm_kind": "api", "mm_stale": stale, "download_maxsize": self.config.max_page_bytes})

    def parse_timeline(self, response: Response):
        if not self.page_status_ok(response):
            return
        page = self.parse_api(response.url, response)
        self.count("api_pages")
        for reason, n in page.drops.items():  # posts of unexpected shape, an unreadable page: counted, not lost
            self.count_drop(reason, n)
        urls = {post.url for post in page.posts}
        stale = 0 if urls - self.items_seen else response.meta.get("mm_stale", 0) + 1
        self.items_seen |= urls
        for post in page.posts:
            self._post(post)
        if page.next_url and page.posts:
            if self.source.max_stale_pages is not None and stale >= self.source.max_stale_pages:
                self.hit_limit("max_stale_pages")
                return
            req = self._api_request(page.next_url, stale=stale)
            if req is not None:
                yield req

    def _post(self, post: SocialPost):
        if post.url in self.posts_seen or not post.images or not self.owns(post.url):
            return
        self.posts_seen.add(post.url)
        if self.config.incremental and self.state.page_done(post.url):
            self.count("pages_skipped_seen")
            return
        self.count("posts")
        ctx = PageCtx(url=post.url, title=None, lang=post.lang, published_at=post.published_at,
                      license=self.source.license)
        if post.drop_reason == R.SOCIAL_NOINDEX and not self.source.include_noindex:
            self.drop_page(ctx, post.images, post.drop_reason)
        elif post.drop_reason == R.SOCIAL_NO_UNAUTHENTICATED:
            self.drop_page(ctx, post.images, post.drop_reason)
        elif post.sensitive and not self.source.include_sensitive:
            self.drop_page(ctx, post.images, R.SOCIAL_SENSITIVE)
        else:
            self.images.dispatch(ctx, post.images)


class MastodonSpider(SocialSpider):
    name = "mmpipe-mastodon"

    def first_urls(self) -> list[str]:
        base = (self.source.instance or "").rstrip("/")
        limit = str(self.source.page_limit)
        urls = [f"{base}/api/v1/timelines/tag/{quote(tag.lstrip('#'), safe='')}?limit={limit}"
                for tag in self.source.hashtags]
        if self.source.local_timeline:
            urls.append(f"{base}/api/v1/timelines/public?local=true&limit={limit}")
        return urls

    def parse_api(self, url: str, response: Response):
        link = response.headers.get(b"Link")
        return parse_mastodon(url, response.body, link_header=link.decode("latin-1") if link else None,
                              video_previews=self.source.video_previews)


class BlueskySpider(SocialSpider):
    name = "mmpipe-bluesky"

    def first_urls(self) -> list[str]:
        base = self.source.appview.rstrip("/")
        limit = str(self.source.page_limit)
        urls = [with_query(f"{base}/xrpc/app.bsky.feed.getAuthorFeed", actor=a, limit=limit)
                for a in self.source.actors]
        urls += [with_query(f"{base}/xrpc/app.bsky.feed.searchPosts", q=q, limit=limit)
                 for q in self.source.search_queries]
        urls += [with_query(f"{base}/xrpc/app.bsky.feed.getFeed", feed=f, limit=limit) for f in self.source.feeds]
        return urls

    def parse_api(self, url: str, response: Response):
        return parse_bluesky(url, response.body, web_base=self.source.web_base)


class FeedSpider(MMSpider):
    """`kind: feed`: rows straight from RSS/Atom entries (Media RSS images, `<img>` in the entry HTML);
    the linked article is not fetched."""

    name = "mmpipe-feed"

    async def start(self):
        for url in self.source.feeds:
            if not self.discovery_allowed():
                break
            yield Request(url, callback=self.parse_feed, errback=self.page_error, priority=DISCOVERY_PRIORITY,
                          meta={"mm_kind": "discovery", "download_maxsize": self.config.max_page_bytes})

    def parse_feed(self, response: Response):
        if not self.page_status_ok(response):
            return
        for entry in parse_feed(response.url, response.body):
            if not entry.images or not self.page_allowed(entry.link):
                continue
            self.count("pages")
            for ref in entry.images:
                ref.add(entry.summary, "context")
                ref.add(entry.title, "title")
            ctx = PageCtx(url=entry.link, title=entry.title, published_at=entry.published_at,
                          license=self.source.license)
            self.images.dispatch(ctx, entry.images)

