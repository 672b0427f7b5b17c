"""Caption text around a picture: its figcaption (with marked-up credits routed apart) and the nearest paragraph.

Shared by the page's own pictures and its teasers (`crawlers.extract.pictures`).
"""

from __future__ import annotations

import re
from functools import lru_cache

from lxml import etree
from lxml.etree import _Element as Element

from crawlers.extract.text import clean_text, find_credit, leading_credit, normalize_credit

# class/itemprop words that mark a credit inside a caption, matched as whole parts of a token ("media-credit",
# "imageCredit", "copyrightHolder"), never inside one: "_pattribution-w-auto" (a CSS-in-JS utility class of
# Quanta's caption box) is not "attribution"
_CREDIT_WORDS = frozenset(("credit", "credits", "copyright", "byline", "photographer", "source", "attribution",
                           "courtesy"))
_TOKEN_PART = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
_OFFSCREEN = re.compile(r"off-?screen|sr-only|visually-hidden|screen-reader")
_SKIP_TEXT_TAGS = {"script", "style", "noscript", "template"}
_BREAKS = {"br", "p", "div", "li", "figure", "h2", "h3", "h4", "h5", "span"}  # "<span>1</span><span>of 4</span>"
_BLOCKS = {"p", "div", "section", "figure", "blockquote", "ul", "ol", "table", "h2", "h3", "h4", "picture"}
text_content = etree.XPath("string()", smart_strings=False)  # what lxml.html's text_content() runs


def ancestor(el: Element, tag: str, depth: int) -> Element | None:
    """The nearest `tag` among `depth` ancestors; `<source>` levels do not count (libxml2 nests the elements
    after an unclosed `<source>` inside it, so a `<picture>` of ten sources would hide its `<figure>`)."""
    el = el.getparent()
    while el is not None and depth > 0:
        if el.tag == tag:
            return el
        if el.tag != "source":
            depth -= 1
        el = el.getparent()
    return None


def figcaption(figure: Element) -> tuple[str, str | None]:
    cap = figure.find(".//figcaption")
    if cap is None:
        return "", None
    credit_parts, text_parts = [], []
    _split_caption_markup(cap, text_parts, credit_parts)
    caption = clean_text("".join(text_parts))
    leading = leading_credit(caption)
    if leading is not None:  # "Bild: pixabay Ein Gericht ...": cut out, as a marked-up credit is
        caption, credit = leading
        return caption, normalize_credit(" ".join(credit_parts)) or normalize_credit(credit)
    return caption, normalize_credit(" ".join(credit_parts)) or find_credit(caption)


def _split_caption_markup(el: Element, text: list[str], credit: list[str]) -> None:
    """Text of a figcaption, with credit elements (`.credit`, `<small>`, `<cite>`) routed apart."""
    if el.text:
        text.append(el.text)
    for child in el:
        if isinstance(child.tag, str) and child.tag not in _SKIP_TEXT_TAGS:
            is_credit = child.tag in ("small", "cite") or _credit_marked(
                f"{child.get('class') or ''} {child.get('itemprop') or ''}")
            if is_credit:
                credit.extend(_visible_text(child))
            elif not _is_offscreen(child):
                if child.tag in _BREAKS:
                    text.append(" ")
                _split_caption_markup(child, text, credit)
                if child.tag in _BREAKS:
                    text.append(" ")
        if child.tail:
            text.append(child.tail)


@lru_cache(maxsize=4096)
def _credit_marked(names: str) -> bool:
    return any(part.lower() in _CREDIT_WORDS for token in names.split() for part in _TOKEN_PART.findall(token))


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


def context(el: Element) -> str:
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
        return clean_text(text_content(el))
    return ""
