"""The news-article page object: `extract_article(url, body)` -> every content image with its caption candidates.

Pure function of the URL and the bytes: no Scrapy, no network, so it is tested directly on saved real pages.
Candidates are recorded per origin (figcaption, alt, jsonld, og_image_alt, context, title); which one becomes
the caption is the clean stage's decision (`data_schemas.CAPTION_PREFERENCE`).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from lxml import etree
from lxml.etree import _Element as Element
from w3lib.encoding import html_to_unicode

from crawlers.extract import meta
from crawlers.extract.images import absolute_url, best_image_url, is_chrome, is_chrome_url
from crawlers.extract.records import ArticlePage, ImageRef
from crawlers.extract.text import clean_text, find_credit, normalize_credit

_CREDIT_CLASS = re.compile(r"credit|copyright|byline|photographer|source|attribution|courtesy", re.IGNORECASE)
_OFFSCREEN = re.compile(r"off-?screen|sr-only|visually-hidden|screen-reader")
_SKIP_TEXT_TAGS = {"script", "style", "noscript", "template"}
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*>")
_BREAKS = {"br", "p", "div", "li", "figure", "h2", "h3", "h4"}
_BLOCKS = {"p", "div", "section", "figure", "blockquote", "ul", "ol", "table", "h2", "h3", "h4", "picture"}
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
    page.tdm_reservation = (meta.first_meta(tags, "tdm-reservation") or "").strip() == "1"
    page.is_article = ((meta.first_meta(tags, "og:type") or "").lower() == "article"
                       or any(meta.is_article_ld(o) for o in ld) or len(doc.findall(".//article")) == 1)
    page.images = _images(doc, base, tags, ld, page.title if page_text else None, page_text=page_text)
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


def _scope(doc: Element) -> Element:
    """The article body: the largest `<article>`, else articleBody/main, else the whole body."""
    articles = doc.findall(".//article")
    if articles:
        return max(articles, key=lambda a: len(_text_content(a)))
    for xpath in (".//*[@itemprop='articleBody']", ".//main", ".//*[@role='main']"):
        found = doc.find(xpath) if "@" not in xpath else next(iter(doc.xpath(xpath)), None)
        if found is not None:
            return found
    body = doc.find(".//body")
    return body if body is not None else doc


def _images(doc: Element, base: str, tags, ld: list[dict], title: str | None, *,
            page_text: bool) -> list[ImageRef]:
    """Candidates keep the publisher's text as written (a glued-on credit included: RAW is raw); the credit is
    also extracted into `credit`.  Credits marked up as such (`<small>`, `.credit`) are cut out of the text."""
    refs: dict[str, ImageRef] = {}
    seen: dict = {}
    for img in _body_images(_scope(doc)):
        src = best_image_url(img, base)
        if not src or is_chrome(img, src, seen):
            continue
        ref = refs.setdefault(src, ImageRef(src))
        figure = _ancestor(img, "figure", 6)
        if figure is not None:
            caption, credit = _figcaption(figure)
            ref.add(caption, "figcaption")
            ref.credit = ref.credit or credit
        alt = clean_text(img.get("alt"))
        ref.add(alt, "alt")
        ref.credit = ref.credit or find_credit(alt)
        if page_text:
            ref.add(_context(figure if figure is not None else img), "context")
    for url, caption in meta.ld_images(ld):
        _add_meta_image(refs, url, caption, "jsonld", base)
    for url, alt in meta.og_images(tags):
        _add_meta_image(refs, url, alt, "og_image_alt", base)
    for ref in refs.values():
        ref.add(title, "title")
    return list(refs.values())


def _body_images(scope: Element):
    """`<img>`s of the body; where a `<noscript>` fallback exists, it (the server-rendered real URL) wins over
    the lazy-loading placeholder `<img>`s of the same figure."""
    for img in scope.iter("img"):
        if _ancestor(img, "noscript", 3) is None:
            container = _ancestor(img, "figure", 6)
            container = container if container is not None else img.getparent()
            if container is not None and container.find(".//noscript//img") is not None:
                continue
        yield img


def _add_meta_image(refs: dict[str, ImageRef], url: str, caption: str | None, origin: str, base: str) -> None:
    src = absolute_url(url, base)
    if not src or is_chrome_url(src):
        return
    ref = refs.setdefault(src, ImageRef(src))
    text = clean_text(caption)
    ref.add(text, origin)
    ref.credit = ref.credit or find_credit(text)


def _ancestor(el: Element, tag: str, depth: int) -> Element | None:
    el = el.getparent()
    for _ in range(depth):
        if el is None:
            return None
        if el.tag == tag:
            return el
        el = el.getparent()
    return None


def _figcaption(figure: Element) -> tuple[str, str | None]:
    cap = figure.find(".//figcaption")
    if cap is None:
        return "", None
    credit_parts, text_parts = [], []
    _split_caption_markup(cap, text_parts, credit_parts)
    caption = clean_text("".join(text_parts))
    return caption, normalize_credit(" ".join(credit_parts)) or find_credit(caption)


def _split_caption_markup(el: Element, text: list[str], credit: list[str]) -> None:
    """Text of a figcaption, with credit elements (`.credit`, `<small>`, `<cite>`) routed apart."""
    if el.text:
        text.append(el.text)
    for child in el:
        if isinstance(child.tag, str) and child.tag not in _SKIP_TEXT_TAGS:
            is_credit = child.tag in ("small", "cite") or _CREDIT_CLASS.search(
                f"{child.get('class') or ''} {child.get('itemprop') or ''}")
            if is_credit:
                credit.extend(_visible_text(child))
            elif not _is_offscreen(child):
                if child.tag in _BREAKS:
                    text.append(" ")
                _split_caption_markup(child, text, credit)
        if child.tail:
            text.append(child.tail)


def _visible_text(el: Element):
    if el.text:
        yield el.text
    for child in el:
        if isinstance(child.tag, str) and child.tag not in _SKIP_TEXT_TAGS and not _is_offscreen(child):
            yield from _visible_text(child)
        if child.tail:
            yield child.tail


def _is_offscreen(el: Element) -> bool:
    cls = el.get("class")
    return bool(cls and _OFFSCREEN.search(cls))


def _context(el: Element) -> str:
    """The nearest paragraph: the first `<p>` after the image's block, else the last one before it."""
    block = el
    while block.getparent() is not None and block.tag not in _BLOCKS and block.getparent().tag not in ("body",):
        if block.getnext() is not None or block.getprevious() is not None:
            break
        block = block.getparent()
    for sib in block.itersiblings():
        text = _para_text(sib)
        if text:
            return text
    for sib in block.itersiblings(preceding=True):
        text = _para_text(sib)
        if text:
            return text
    return ""


def _para_text(el: Element) -> str:
    if not isinstance(el.tag, str):
        return ""
    if el.tag == "p":
        return clean_text(_text_content(el))
    return ""


def _links(doc: Element, base: str, url: str) -> list[str]:
    host = urlsplit(url).hostname
    seen: dict[str, None] = {}
    for a in doc.iter("a"):
        href = absolute_url(a.get("href"), base)
        rel = (a.get("rel") or "").lower()
        if href and urlsplit(href).hostname == host and not any(r in rel for r in ("nofollow", "sponsored", "ugc")):
            seen.setdefault(href, None)
    return list(seen)
