"""Web-archive spider (`kind: warc`): the pages of WAT (and with `html: true`, WARC) files, their images fetched
live like a URL list's (`urllist.ListSpider`).  RAW rows name the archived page as page_url."""

from __future__ import annotations

from collections.abc import Iterator

from crawlers.fetch import PageCtx
from crawlers.spiders.urllist import Group, ListSpider
from crawlers.urllist import Reject, expand_paths
from crawlers.warcfiles import archive_pages


class WarcSpider(ListSpider):
    name = "mmpipe-warc"

    def groups(self) -> Iterator[Group | Reject]:
        src = self.source
        for path in expand_paths(src.paths):
            for page in archive_pages(path, html=src.html, agent=self.agent, page_text=src.page_text):
                if isinstance(page, Reject):
                    yield page
                    continue
                if not page.images:
                    continue
                # one accounting unit per (page, process): each process finishes its own share of the page
                key = page.url + (f"#mmpipe{self.owner_tag}" if self.owner_tag else "")
                ctx = PageCtx(url=key, title=page.title, lang=page.lang, published_at=page.published_at,
                              license=page.license or src.license, row_page_url=page.url,
                              opt_out=tuple(sorted(d for d in page.robots if d.startswith("no"))))
                yield Group(ctx, page.images, drop=page.drop, archived_page=page.url)
