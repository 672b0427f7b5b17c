"""What the page objects return: plain dataclasses, independent of Scrapy, cheap to build and to compare."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(slots=True)
class ImageRef:
    """One image on one page with every caption candidate found for it, best-known first."""

    url: str
    candidates: list[tuple[str, str]] = field(default_factory=list)  # (text, origin)
    credit: str | None = None
    role: str | None = None  # data_schemas.ROLES: lead | body | teaser; None where the source does not say
    link: str | None = None  # a teaser's: the page the picture belongs to (it is shown here, linking there)
    width: float = 0.0  # the largest width the markup declares for this picture (0: unknown), to pick the best URL

    def add(self, text: str | None, origin: str) -> None:
        if text and (text, origin) not in self.candidates:
            self.candidates.append((text, origin))

    def merge(self, other: ImageRef) -> None:
        for text, origin in other.candidates:
            self.add(text, origin)
        self.credit = self.credit or other.credit
        self.role = self.role or other.role


@dataclass(slots=True)
class ArticlePage:
    url: str
    title: str | None = None
    lang: str | None = None
    published_at: datetime | None = None
    license: str | None = None
    images: list[ImageRef] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    robots: frozenset[str] = frozenset()  # <meta name="robots"> directives, lower case
    tdm_reservation: bool = False  # <meta name="tdm-reservation" content="1">
    is_article: bool = False  # og:type article, an Article in JSON-LD, or an <article> element
    teasers: list[ImageRef] = field(default_factory=list)  # pictures of other pages shown here: role "teaser",
    # `link` the page they link to, candidates their own teaser text (never this page's title or text)


@dataclass(slots=True)
class FeedEntry:
    link: str
    title: str | None = None
    summary: str | None = None
    published_at: datetime | None = None
    images: list[ImageRef] = field(default_factory=list)


@dataclass(slots=True)
class SitemapPage:
    sitemaps: list[str] = field(default_factory=list)  # children of a sitemap index
    entries: list[FeedEntry] = field(default_factory=list)  # <url> entries (news and image extensions read)


@dataclass(slots=True)
class SocialPost:
    """One Mastodon status or Bluesky post with its image attachments."""

    url: str  # the post's public page: the RAW page_url
    text: str | None = None  # status text: the context candidate
    lang: str | None = None
    published_at: datetime | None = None
    images: list[ImageRef] = field(default_factory=list)
    sensitive: bool = False
    drop_reason: str | None = None  # reasons.SOCIAL_* when the whole post must not be kept
    cursor_id: str | None = None  # the id used for max_id paging (Mastodon)


@dataclass(slots=True)
class SocialPage:
    posts: list[SocialPost] = field(default_factory=list)
    next_url: str | None = None  # next page of the timeline/feed, when there is one
    drops: dict[str, int] = field(default_factory=dict)  # posts left out, by reason (bad type, unreadable page)
