"""The news-article page object: `extract_article(url, body)` -> every content image with its caption candidates.

Pure function of the URL and the bytes: no Scrapy, no network, so it is tested directly on saved real pages.
Candidates are recorded per origin (figcaption, alt, jsonld, og_image_alt, context, title); which one becomes
the caption is the clean stage's decision (`data_schemas.CAPTION_PREFERENCE`).
"""

from __future__ import annotations

import re

from lxml import etree
from lxml.etree import _Element as Element
from w3lib.encoding import html_to_unicode

from crawlers.extract import meta
from crawlers.extract.images import absolute_url, url_host
from crawlers.extract.pictures import page_pictures
from crawlers.extract.records import ArticlePage
from crawlers.extract.text import clean_text
from crawlers.optout import tdm_reserved_values

_XML_DECL = re.compile(r"^\s*<\?xml[^>]*>")
# libxml2's HTML parser with lxml's default element classes: `lxml.html`'s parser gives the same tree, but asks a
# Python class lookup for every element the code touches, which made walking a page ~5x slower.  No table of
# id attributes (only getElementById and XPath id() read it) and no made-up DOCTYPE: a third less parse time.
_PARSER = etree.HTMLParser(collect_ids=False, default_doctype=False)
_text_content = etree.XPath("string()", smart_strings=False)  # what lxml.html's text_content() runs


def parse_html(body: bytes | str) -> Element | None:
    """lxml document or None for an empty/undecodable body (broken markup is repaired, never an exception)."""
    if not body or not body.strip():
        return None
    if isinstance(body, bytes):  # honour BOM, <meta charset> and friends the way browsers do
        body = html_to_unicode(None, body)[1]
    body = _XML_DECL.sub("", body, count=1)
    try:
        return etree.fromstring(body, _PARSER)  # None for a document without elements
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None


def extract_article(url: str, body: bytes | str, *, agent: str = "mmpipe", page_text: bool = True,
                    links: bool = True) -> ArticlePage:
    """`page_text`: also record the page title and the nearest paragraph (origins title/context); they are
    last in CAPTION_PREFERENCE, so they only caption images that have no better text."""
    page = ArticlePage(url=url)
    doc = parse_html(body)
    if doc is None:
        return page
    base = _base_url(doc, url)
    tags = meta.meta_tags(doc)
    ld = meta.json_ld(doc)
    page.title = _title(doc, tags)
    page.lang = _lang(doc, tags)
    page.published_at = meta.parse_date(meta.first_meta(tags, "article:published_time", "og:published_time",
                                                        "datepublished", "pubdate", "date")
                                        or meta.ld_value(ld, "datePublished") or _time_datetime(doc))
    page.license = _license(doc, ld, base)
    page.robots = meta.robots_directives(tags, agent=agent)
    page.tdm_reservation = tdm_reserved_values([meta.first_meta(tags, "tdm-reservation")])
    page.is_article = ((meta.first_meta(tags, "og:type") or "").lower() == "article"
                       or any(meta.is_article_ld(o) for o in ld) or len(doc.findall(".//article")) == 1)
    page.images, page.teasers = page_pictures(doc, base, tags=tags, ld=ld, title=page.title if page_text else None,
                                              url=url, page_text=page_text)
    page.links = _links(doc, base, url) if links else []
    return page


def _base_url(doc: Element, url: str) -> str:
    base = doc.find(".//base[@href]")
    if base is not None:
        resolved = absolute_url(base.get("href"), url)
        if resolved:
            return resolved
    return url


def _title(doc: Element, tags: list[tuple[str, str]]) -> str | None:
    title = meta.first_meta(tags, "og:title", "twitter:title")
    if not title:
        el = doc.find(".//title")
        title = _text_content(el) if el is not None else None
    if not title:
        h1 = doc.find(".//h1")
        title = _text_content(h1) if h1 is not None else None
    return clean_text(title) or None


def _lang(doc: Element, tags: list[tuple[str, str]]) -> str | None:
    lang = doc.get("lang") or doc.get("xml:lang") or meta.first_meta(tags, "og:locale", "content-language",
                                                                        "language")
    if not lang:
        return None
    lang = lang.strip().replace("_", "-").split("-")[0].lower()
    return lang if re.fullmatch(r"[a-z]{2,3}", lang) else None


def _time_datetime(doc: Element) -> str | None:
    t = doc.find(".//time[@datetime]")
    return t.get("datetime") if t is not None else None


def _license(doc: Element, ld: list[dict], base: str) -> str | None:
    link = doc.find(".//link[@rel='license']")
    if link is None:
        link = doc.find(".//a[@rel='license']")
    if link is not None and link.get("href"):
        return absolute_url(link.get("href"), base) or link.get("href")
    return meta.ld_value(ld, "license")


def _links(doc: Element, base: str, url: str) -> list[str]:
    host = url_host(url)
    seen: dict[str, None] = {}
    for a in doc.iter("a"):
        href = absolute_url(a.get("href"), base)
        if not href or href in seen or url_host(href) != host:
            continue
        rel = a.get("rel")
        if not rel or not any(r in rel.lower() for r in ("nofollow", "sponsored", "ugc")):
            seen[href] = None
    return list(seen)
