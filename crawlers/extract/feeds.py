"""Page objects for discovery documents: RSS 2.0 / Atom feeds and XML sitemaps (index, news and image extensions).

Feeds and sitemaps name article URLs and often images with publisher-written captions (Media RSS
`media:description`, sitemap `image:caption`); those are recorded with origin "feed" and travel with the article
request, so the article's row carries them too.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Callable

import lxml.html
from lxml import etree

from crawlers.extract.images import absolute_url, best_image_url, is_chrome, is_chrome_url
from crawlers.extract.meta import parse_date
from crawlers.extract.records import FeedEntry, ImageRef, SitemapPage
from crawlers.extract.text import clean_text, find_credit, normalize_credit

MAX_XML_BYTES = 50 * 1024 * 1024  # sitemaps are capped at 50 MB uncompressed by the protocol
_IMAGE_EXT = re.compile(r"\.(?:jpe?g|png|gif|webp|avif|bmp|tiff?|heic)(?:$|[?#])", re.IGNORECASE)
_PARSER = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=False)


def _xml(body: bytes) -> etree._Element | None:
    if body[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(body)) as fh:
                body = fh.read(MAX_XML_BYTES + 1)[:MAX_XML_BYTES]
        except (OSError, EOFError):
            return None
    body = body.lstrip()
    if not body:
        return None
    try:
        return etree.fromstring(body, parser=_PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return None


def _local(el) -> str:
    tag = el.tag
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _children(el, name: str):
    return [c for c in el if _local(c) == name]


def _child_text(el, *names: str) -> str | None:
    for name in names:
        for c in el:
            if _local(c) == name and (c.text or "").strip():
                return c.text.strip()
    return None


def parse_feed(url: str, body: bytes) -> list[FeedEntry]:
    """Entries of an RSS/Atom feed with their images and publisher captions; [] for anything unreadable."""
    root = _xml(body) if body else None
    if root is None:
        return []
    items = [el for el in root.iter() if _local(el) in ("item", "entry")]
    entries = []
    for item in items:
        link = _entry_link(item, url)
        if not link:
            continue
        entry = FeedEntry(link=link, title=clean_text(_child_text(item, "title")) or None,
                          published_at=parse_date(_child_text(item, "pubdate", "published", "updated", "date")))
        html = _child_text(item, "encoded", "content", "description", "summary")
        entry.summary = _html_text(html) or None
        entry.images = _entry_images(item, html, link)
        entries.append(entry)
    return entries


def _entry_link(item, base: str) -> str | None:
    orig = _child_text(item, "origlink")
    if orig:
        return absolute_url(orig, base)
    for link in _children(item, "link"):
        href = link.get("href")
        if href is not None and link.get("rel", "alternate") == "alternate":
            return absolute_url(href, base)
        if href is None and (link.text or "").strip():
            return absolute_url(link.text.strip(), base)
    guid = next(iter(_children(item, "guid")), None)
    if guid is not None and guid.get("isPermaLink", "true") == "true" and (guid.text or "").startswith("http"):
        return absolute_url(guid.text.strip(), base)
    return None


def _entry_images(item, html: str | None, link: str) -> list[ImageRef]:
    refs: dict[str, ImageRef] = {}
    for el in item.iter():
        name = _local(el)
        if name in ("content", "thumbnail") and el.get("url"):
            if name == "content" and not _is_image_media(el):
                continue
            _media_ref(refs, el, link)
        elif name in ("enclosure", "link") and el.get("href" if name == "link" else "url"):
            if name == "link" and el.get("rel") != "enclosure":
                continue
            if (el.get("type") or "").startswith("image/"):
                _media_ref(refs, el, link, url_attr="href" if name == "link" else "url")
    if html:
        _html_images(refs, html, link)
    return list(refs.values())


def _is_image_media(el) -> bool:
    medium, mtype = (el.get("medium") or "").lower(), (el.get("type") or "").lower()
    return medium == "image" or mtype.startswith("image/") or (not medium and not mtype
                                                                and bool(_IMAGE_EXT.search(el.get("url"))))


def _media_ref(refs: dict[str, ImageRef], el, base: str, url_attr: str = "url") -> None:
    src = absolute_url(el.get(url_attr), base)
    if not src or is_chrome_url(src):
        return
    ref = refs.setdefault(src, ImageRef(src))
    # media:description/title/credit may sit on the element or on its media:group
    scopes = [el] + ([el.getparent()] if _local(el.getparent()) == "group" else [])
    for scope in scopes:
        desc = _child_text(scope, "description") or _child_text(scope, "title")
        if desc:
            text = _html_text(desc)
            ref.add(text, "feed")
            ref.credit = ref.credit or find_credit(text)
        credit = _child_text(scope, "credit")
        if credit:
            ref.credit = normalize_credit(credit) or ref.credit


def _html_images(refs: dict[str, ImageRef], html: str, base: str) -> None:
    try:
        frag = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return
    for img in frag.iter("img"):
        src = best_image_url(img, base)
        if not src or is_chrome(img, src):
            continue
        ref = refs.setdefault(src, ImageRef(src))
        alt = clean_text(img.get("alt"))
        ref.add(alt, "alt")
        ref.credit = ref.credit or find_credit(alt)


def _html_text(html: str | None) -> str:
    if not html:
        return ""
    if "<" not in html:
        return clean_text(html)
    try:
        return clean_text(lxml.html.fragment_fromstring(html, create_parent="div").text_content())
    except (etree.ParserError, ValueError):
        return clean_text(re.sub(r"<[^>]+>", " ", html))


_SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
_NEWS = "{http://www.google.com/schemas/sitemap-news/0.9}"
_IMG = "{http://www.google.com/schemas/sitemap-image/1.1}"


def _text(el, tag: str) -> str | None:
    return _stripped(el.find(tag))


def _stripped(el) -> str | None:
    """The element's own text, stripped; None for no element or no text."""
    text = el.text if el is not None else None
    return text.strip() or None if text else None


def _texts(el, tags: tuple[str, ...]) -> list[str | None]:
    """`_text(el, tag)` for each tag, in one pass over the children (a sitemap has ~10 per URL and up to 50,000
    URLs; a `find` per field parses its path again each time)."""
    found: list = [None] * len(tags)
    for child in el:
        try:
            i = tags.index(child.tag)
        except ValueError:
            continue
        if found[i] is None:
            found[i] = child
    return [_stripped(c) for c in found]


_URL_FIELDS = (f"{_SM}loc", f"{_SM}lastmod")
_IMAGE_FIELDS = (f"{_IMG}loc", f"{_IMG}caption", f"{_IMG}title")


def parse_sitemap(url: str, body: bytes, *, keep: Callable[[str], bool] | None = None) -> SitemapPage:
    """Child sitemaps of an index, or the `<url>` entries of a urlset (news title/date, image captions).

    `keep`: which articles to read in full; the others come back as bare links (a crawl split over processes
    reads the captions of its own share only, and still knows every listed article for what it is).
    Sitemaps list up to 50,000 URLs, so the usual namespaces are looked up directly; a sitemap written without
    (or with other) namespaces takes the slower namespace-agnostic path."""
    page = SitemapPage()
    root = _xml(body) if body else None
    if root is None:
        return page
    if not (isinstance(root.tag, str) and root.tag.startswith(_SM)):
        return _parse_sitemap_any_ns(url, root, keep)
    if root.tag == f"{_SM}sitemapindex":
        page.sitemaps = [loc for loc in (absolute_url(_text(sm, f"{_SM}loc"), url)
                                         for sm in root.iterchildren(f"{_SM}sitemap")) if loc]
        return page
    for u in root.iterchildren(f"{_SM}url"):
        loc, lastmod = _texts(u, _URL_FIELDS)
        loc = absolute_url(loc, url)
        if not loc:
            continue
        entry = FeedEntry(link=loc)
        page.entries.append(entry)
        if keep is not None and not keep(loc):
            continue
        news = u.find(f"{_NEWS}news")
        if news is not None:
            entry.title = clean_text(_text(news, f"{_NEWS}title")) or None
            entry.published_at = parse_date(_text(news, f"{_NEWS}publication_date"))
        entry.published_at = entry.published_at or parse_date(lastmod)
        for image in u.iterchildren(f"{_IMG}image"):
            image_loc, caption, title = _texts(image, _IMAGE_FIELDS)
            _sitemap_image(entry, loc, image_loc, caption or title)
    return page


def _sitemap_image(entry: FeedEntry, page_url: str, loc: str | None, caption: str | None) -> None:
    src = absolute_url(loc, page_url)
    if not src or is_chrome_url(src):
        return
    ref = ImageRef(src)
    ref.add(clean_text(caption), "feed")  # its credit is split off only if the caption is used (news._merge_feed)
    entry.images.append(ref)


def _parse_sitemap_any_ns(url: str, root, keep: Callable[[str], bool] | None) -> SitemapPage:
    page = SitemapPage()
    if _local(root) == "sitemapindex":
        for sm in _children(root, "sitemap"):
            loc = absolute_url(_child_text(sm, "loc"), url)
            if loc:
                page.sitemaps.append(loc)
        return page
    for u in _children(root, "url"):
        loc = absolute_url(_child_text(u, "loc"), url)
        if not loc:
            continue
        if keep is not None and not keep(loc):
            page.entries.append(FeedEntry(link=loc))
            continue
        entry = FeedEntry(link=loc, published_at=parse_date(_child_text(u, "lastmod")))
        for news in _children(u, "news"):
            entry.title = clean_text(_child_text(news, "title")) or entry.title
            entry.published_at = parse_date(_child_text(news, "publication_date")) or entry.published_at
        for image in _children(u, "image"):
            _sitemap_image(entry, loc, _child_text(image, "loc"),
                           _child_text(image, "caption") or _child_text(image, "title"))
        page.entries.append(entry)
    return page
