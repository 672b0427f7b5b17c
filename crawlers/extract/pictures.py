"""The pictures of a news page: one record per picture of its own, with its role, and the teasers of other pages.

`page_pictures` reads the content block (`scope.content_block`), weighs every `<img>` there (chrome evidence
against content evidence), sets aside teasers (pictures that link to another page), merges the records of one
picture (`variants.PictureSet`), adds the og:image / JSON-LD metadata and marks the declared lead picture
(og:image, else twitter:image, else the JSON-LD image) `role="lead"`, the others `"body"`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml.etree import _Element as Element

from crawlers.extract import meta
from crawlers.extract.captions import ancestor, context, figcaption, text_content
from crawlers.extract.images import (
    absolute_url,
    chrome_points,
    declared_size,
    image_candidates,
    is_chrome_url,
    plausible_url,
    tiny,
    url_path,
)
from crawlers.extract.records import ImageRef
from crawlers.extract.scope import content_block
from crawlers.extract.text import clean_text, find_credit
from crawlers.extract.variants import PictureSet, url_width

_DOCUMENT = re.compile(r"\.(?:html?|xhtml|shtml|aspx?|jsp|cfm|js|css|json|xml|txt|pdf|mp4|webm|mp3)$", re.IGNORECASE)
_IMAGE_FILE = re.compile(r"\.(?:jpe?g|png|gif|webp|avif|bmp|tiff?|heic)$", re.IGNORECASE)
TEASER_CARD_CHARS = 400  # a teaser card (headline, kicker, date) is short; a story paragraph next to a link is not
TEASER_MIN_LINK_TEXT = 15  # characters of link text that make a headline
THUMBNAIL_WIDTH = 200  # px: a picture whose largest candidate states a smaller width is a thumbnail
LARGE_SRCSET_WIDTH = 600  # px: a srcset that offers this width is a picture meant to be seen


@dataclass(slots=True)
class _Page:
    """What the image pass needs to know about the page."""

    base: str
    url: str
    own: frozenset[str]  # the page's own addresses, normalised: never an image
    meta: list[tuple[str, str | None, str]]  # (url, caption, origin) of og:image / twitter:image / JSON-LD
    page_text: bool
    below: str = ""  # norm_url(url) + "/": links to pages below this one are not other pages
    lengths: dict = field(default_factory=dict)  # element -> text length, asked again for every picture near it


def page_pictures(doc: Element, base: str, *, tags, ld: list[dict], title: str | None, url: str,
                  page_text: bool) -> tuple[list[ImageRef], list[ImageRef]]:
    """The page's own pictures, one record each, and the teasers it shows for other pages.

    Candidates keep the publisher's text as written (a glued-on credit included: RAW is raw); the credit is also
    extracted into `credit`.  Credits marked up as such (`<small>`, `.credit`) are cut out of the text."""
    page = _Page(base, url, own_urls(doc, tags, url=url, base=base), _meta_images(tags, ld, base=base), page_text,
                 below=norm_url(url) + "/")
    meta_keys = PictureSet()
    for meta_url, _, _ in page.meta:
        meta_keys.add([meta_url])
    pictures, teasers, seen = PictureSet(), [], {}
    for block in content_block(doc, headline=title):
        for img in _body_images(block):
            _body_image(img, page, pictures=pictures, teasers=teasers, meta_keys=meta_keys, seen=seen)
        for figure in _microdata_figures(block):
            _microdata_picture(figure, page, pictures=pictures)
    lead = page.meta[0][0] if page.meta else None
    if lead and pictures.find([lead], by_name=True) is None:
        _lead_figure(doc, lead, page=page, pictures=pictures)
    for meta_url, caption, origin in page.meta:
        ref = pictures.find([meta_url], by_name=True)
        if ref is None and meta_url != lead:
            continue  # a further og/JSON-LD image that the page does not show: a crop of the lead, or unrelated
        ref = pictures.add([meta_url], by_name=True)  # merged into the body's record; its URL if it is better
        text = clean_text(caption)
        ref.add(text, origin)
        ref.credit = ref.credit or find_credit(text)
    lead_ref = pictures.find([lead], by_name=True) if lead else None
    for ref in pictures.refs:
        ref.role = "lead" if ref is lead_ref else "body"
        ref.add(title, "title")
    return pictures.refs, teasers


def _body_images(scope: Element):
    """`<img>`s of the block; where a `<noscript>` fallback exists, it (the server-rendered real URL) wins over
    the lazy-loading placeholder `<img>`s of the same figure."""
    for img in scope.iter("img"):
        if ancestor(img, "noscript", 3) is None:
            container = ancestor(img, "figure", 6)
            container = container if container is not None else img.getparent()
            if container is not None and container.find(".//noscript//img") is not None:
                continue
        yield img


def _microdata_figures(block: Element):
    """`<figure itemtype=".../ImageObject" itemid=URL>` without an `<img>`: the picture a script fills in
    later (The New York Times' body photos), named by its microdata."""
    for figure in block.iter("figure"):
        if "ImageObject" in (figure.get("itemtype") or "") and figure.find(".//img") is None:
            yield figure


def _microdata_picture(figure: Element, page: _Page, *, pictures: PictureSet) -> None:
    url = figure.get("itemid")
    if not url:
        tag = figure.find(".//*[@itemprop='url']")
        url = (tag.get("content") or tag.get("href")) if tag is not None else None
    src = absolute_url(url, page.base) if url and plausible_url(url) else None
    if not src or not_picture(src, page.own) or is_chrome_url(src):
        return
    caption, credit = figcaption(figure)
    ref = pictures.add([src], by_name=True)
    ref.add(caption, "figcaption")
    ref.credit = ref.credit or credit


def _body_image(img: Element, page: _Page, *, pictures: PictureSet, teasers: list[ImageRef],
                meta_keys: PictureSet, seen: dict) -> None:
    """Weigh one `<img>` of the content block: chrome, a teaser of another page, or one of this page's pictures.

    Chrome evidence (`images.chrome_points`: 2 for the image's own class, 1-2 for an ancestor) must outweigh the
    content evidence: 1 for being in the content block, 2 for a figure with a caption, 1 for a large declared
    size, 2 for being the og/JSON-LD image; a `lazyload banner` photo with a caption is kept."""
    if tiny(img):
        return
    found = [(size, u) for size, u in image_candidates(img, page.base) if not not_picture(u, page.own)]
    if not found or is_chrome_url(found[0][1]):
        return
    urls = [u for _, u in found]
    figure = ancestor(img, "figure", 6)
    caption, credit = figcaption(figure) if figure is not None else ("", None)
    evidence = 1 + 2 * bool(caption) + _large(img, found) + 2 * (meta_keys.find(urls, by_name=True) is not None)
    if chrome_points(img, seen) >= evidence:
        return
    link = _teaser_link(img, figure, page)
    if link:
        teasers.append(_teaser_ref(img, figure, url=urls[0], caption=caption, link=link))
        return
    stated = _width(found) or url_width(urls[0])
    if stated and stated < THUMBNAIL_WIDTH:
        return  # the largest this page offers is a thumbnail (a related-story list, a gallery strip)
    ref = pictures.add(urls, width=_width(found), by_name=True)
    ref.add(caption, "figcaption")
    ref.credit = ref.credit or credit
    alt = clean_text(img.get("alt"))
    ref.add(alt, "alt")
    ref.credit = ref.credit or find_credit(alt)
    if page.page_text:
        ref.add(context(figure if figure is not None else img), "context")


def _width(found: list[tuple[float, str]]) -> float:
    """The srcset width of the best candidate; 0 for lazy/src ranks (< 1) and bare `1x` entries (1000)."""
    size = found[0][0]
    return size if size >= 1.0 and size != 1000.0 else 0.0


def _large(img: Element, found: list[tuple[float, str]]) -> int:
    """1 for a picture the markup says is big: declared >= 300x150 and not a strip, or a large srcset width."""
    width, height = declared_size(img)
    return int((width >= 300 and height >= 150 and width <= 3 * height) or _width(found) >= LARGE_SRCSET_WIDTH)


def _lead_figure(doc: Element, lead: str, *, page: _Page, pictures: PictureSet) -> None:
    """The declared lead picture's own `<img>` where it sits outside the content block (a page header): its
    figcaption and alt text are the lead's best captions."""
    wanted = PictureSet()
    wanted.add([lead])
    for img in doc.iter("img"):
        found = image_candidates(img, page.base)
        urls = [u for _, u in found]
        if urls and wanted.find(urls, by_name=True) is not None:
            ref = pictures.add([*urls, lead], width=_width(found), by_name=True)
            figure = ancestor(img, "figure", 6)
            if figure is not None:
                caption, credit = figcaption(figure)
                ref.add(caption, "figcaption")
                ref.credit = ref.credit or credit
            ref.add(clean_text(img.get("alt")), "alt")
            return


def _meta_images(tags, ld: list[dict], *, base: str) -> list[tuple[str, str | None, str]]:
    """og:image (and twitter:image) then JSON-LD images, absolute, chrome URLs left out; the first is the lead."""
    out: list[tuple[str, str | None, str]] = []
    for items, origin in ((meta.og_images(tags), "og_image_alt"), (meta.ld_images(ld), "jsonld")):
        for raw, caption in items:
            src = absolute_url(raw, base)
            if src and not is_chrome_url(src):
                out.append((src, caption, origin))
    return out


def own_urls(doc: Element, tags, *, url: str, base: str) -> frozenset[str]:
    """The page's addresses (its URL, `og:url`, `<link rel=canonical>`), normalised as `norm_url` does."""
    own = {url, meta.first_meta(tags, "og:url")}
    link = doc.find(".//link[@rel='canonical']")
    own.add(link.get("href") if link is not None else None)
    return frozenset(norm_url(absolute_url(u, base) or "") for u in own if u)


def norm_url(url: str) -> str:
    """Scheme, fragment, trailing slash and case dropped: for comparing a URL with the page's own."""
    url = url.split("#", 1)[0].split("://", 1)[-1]
    return url.rstrip("/").lower()


def not_picture(url: str, own: frozenset[str]) -> bool:
    """The page itself (a JSON-LD `@id`, `src="/"`), a site root, or a document: never a picture."""
    if norm_url(url) in own:
        return True
    end = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=len(url))
    if _DOCUMENT.search(url, 0, end):
        return True
    return url_path(url) in ("", "/") if url.count("/") <= 3 else False  # http://host/ has three slashes


def _teaser_link(img: Element, figure: Element | None, page: _Page) -> str | None:
    """The other page a picture links to, when it is a teaser: a headline (>= TEASER_MIN_LINK_TEXT characters of
    link text) to another HTML page in the link around the image or in its small card (`<article>`, `<li>`, or the
    link's own container), and in a card, link text for at least half its text.  An image that only links to a
    page without a headline is a larger view (LWN's `-sm` pictures), not a teaser; links to the image file (a
    lightbox), to this page and to pages below it (WordPress attachment pages) never count."""
    wrap = img.getparent()
    for _ in range(4):
        if wrap is None or wrap.tag == "a":
            break
        wrap = wrap.getparent()
    if wrap is not None and wrap.tag == "a":
        target = _other_page(wrap.get("href"), page)
        if target is None:
            return None
        if len(text_content(wrap).strip()) >= TEASER_MIN_LINK_TEXT:
            return target
        card = _card(wrap, page)
        same = [a for a in card.iter("a") if a is not wrap and _other_page(a.get("href"), page) == target] \
            if card is not None else []
        return target if sum(len(text_content(a).strip()) for a in same) >= TEASER_MIN_LINK_TEXT else None
    card = _card(figure if figure is not None else img.getparent(), page)
    if card is None or card.tag not in ("article", "li"):
        return _headline_card(figure if figure is not None else img, page)
    anchors = [a for a in card.iter("a") if _other_page(a.get("href"), page)]
    link_text = sum(len(text_content(a).strip()) for a in anchors)
    if anchors and link_text >= TEASER_MIN_LINK_TEXT and link_text >= 0.5 * _text_length(card, page):
        return _other_page(anchors[0].get("href"), page)
    return None


def _headline_card(el: Element, page: _Page) -> str | None:
    """A card without `<article>`/`<li>` (BBC's `div.sparrow-item`): a small block around the picture with a
    headline (`<h2>`-`<h6>`) that links to another page."""
    node = el.getparent()
    for _ in range(4):
        if node is None or node.tag in ("body", "html") or _text_length(node, page) > TEASER_CARD_CHARS:
            return None
        for heading in node.iter("h2", "h3", "h4", "h5", "h6"):
            link = heading if heading.tag == "a" else next(heading.iterancestors("a"), None)
            link = link if link is not None else heading.find(".//a")
            target = _other_page(link.get("href"), page) if link is not None else None
            if target and len(text_content(heading).strip()) >= TEASER_MIN_LINK_TEXT:
                return target
        node = node.getparent()
    return None


def _card(el: Element | None, page: _Page) -> Element | None:
    """The small block around a picture: the nearest `<article>`/`<li>` within three levels, else the parent,
    and only while it holds at most TEASER_CARD_CHARS of text."""
    node = el
    for _ in range(3):
        if node is None or node.tag in ("article", "li"):
            break
        node = node.getparent()
    if node is None or node.tag not in ("article", "li"):
        node = el.getparent() if el is not None else None
    if node is None or _text_length(node, page) > TEASER_CARD_CHARS:
        return None
    return node


def _text_length(el: Element, page: _Page) -> int:
    """The element's text length, cached per page: every picture asks it of the ancestors it shares with the
    others."""
    length = page.lengths.get(el)
    if length is None:
        length = page.lengths[el] = len(text_content(el).strip())
    return length


def _other_page(href: str | None, page: _Page) -> str | None:
    target = absolute_url(href, page.base) if href else None
    if not target:
        return None
    end = min((i for i in (target.find("?"), target.find("#")) if i >= 0), default=len(target))
    norm = norm_url(target)
    if norm in page.own or _IMAGE_FILE.search(target, 0, end) or norm.startswith(page.below):
        return None  # this page, its image file (a lightbox), a page below it (an attachment page)
    return target


def _teaser_ref(img: Element, figure: Element | None, *, url: str, caption: str, link: str) -> ImageRef:
    """A teaser's own text: its figcaption or headline, else the link's text, and the alt text."""
    ref = ImageRef(url, role="teaser", link=link)
    card = figure if figure is not None else img.getparent()
    heading = next((h for h in card.iter("h1", "h2", "h3", "h4", "h5") if text_content(h).strip()), None) \
        if card is not None else None
    ref.add(caption or (clean_text(text_content(heading)) if heading is not None else ""), "title")
    ref.add(clean_text(img.get("alt")), "alt")
    return ref
