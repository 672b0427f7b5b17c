"""Which part of a news page is the article: chosen by evidence, the way Readability does, not by the first tag.

Real pages carry many `<article>` elements (teaser lists, a 130-character teaser block beside the story), an empty
`<main>` next to the real body, or no semantic tags at all, so "the largest `<article>`" reads the wrong block on
a good share of them.  Here, as in Readability: every paragraph votes for its parent (less for the elements
above), paragraphs inside comment, sidebar, footer, ... elements do not vote, class and id words add or subtract
weight, link-heavy blocks lose in proportion to their link text; the winner climbs to an ancestor that several
near-winners share, and takes in siblings that score well or are captioned figures / pictures with little text.
Readability-lxml and trafilatura do this job too, at 5-8x the CPU per page (BENCHMARKS.md, "Extraction").
"""

from __future__ import annotations

import re

from lxml import etree
from lxml.etree import _Element as Element

_text_content = etree.XPath("string()", smart_strings=False)
_POSITIVE = frozenset(("article", "body", "content", "entry", "main", "page", "post", "text", "blog", "story",
                       "prose", "articlebody", "hentry", "column"))
_NEGATIVE = frozenset(("comment", "comments", "meta", "footer", "footnote", "sidebar", "related", "share",
                       "sharing", "social", "promo", "teaser", "widget", "nav", "menu", "ad", "ads", "sponsor",
                       "sponsored", "outbrain", "taboola", "recommended", "newsletter", "subscribe", "popular",
                       "trending", "masthead", "breadcrumb", "banner", "cookie", "modal", "combx", "shoutbox"))
# Readability's "unlikely candidates": paragraphs under these cast no vote (unless the element also looks like
# content); `<aside>`, `<nav>`, `<footer>` likewise
_UNLIKELY = frozenset(("comment", "comments", "disqus", "sidebar", "footer", "footnote", "menu", "nav", "popup",
                       "remark", "replies", "rss", "shoutbox", "sponsor", "ad", "ads", "banner", "combx", "community",
                       "cover", "extra", "gdpr", "header", "legends", "pager", "pagination", "related", "social",
                       "share", "tweet", "twitter", "yom", "agegate", "cookie", "outbrain", "taboola"))
_MAYBE = frozenset(("and", "article", "body", "column", "content", "main", "shadow", "entry", "post", "story"))
_UNLIKELY_TAGS = frozenset(("aside", "nav", "footer", "form"))
_TAG_WEIGHT = {"div": 5, "article": 5, "section": 3, "main": 3, "blockquote": 3, "pre": 3, "td": 3, "form": -3,
               "ol": -3, "ul": -3, "li": -3, "dl": -3, "h1": -5, "h2": -5, "h3": -5, "th": -5, "header": -3}
_TOKEN = re.compile(r"[a-z]+")
MIN_PARAGRAPH = 25  # characters: shorter <p>s (bylines, labels, "Advertisement") cast no vote
CLASS_WEIGHT = 25  # Readability's weight of a positive or negative class/id word
VOTE_LEVELS = 5  # a paragraph votes for this many ancestors: 1, 1/2, then 1/(3*level)
HEADLINE_BONUS = 1.5  # blocks of the story whose <h1> is the page's title, on pages with several <article>s
SHARED_ANCESTOR = 3  # near-winners (>= 0.75 of the best) that share an ancestor make it the block
SIBLING_SHARE = 0.2  # a sibling scoring this share of the winner joins it
PHOTO_BLOCK_TEXT = 300  # characters: a picture block beside the text, with at most a caption's worth of text
SIBLING_TEXT = 1000  # characters: a figure next to the text block with at most this much text joins (lead photos)


def content_block(doc: Element, *, headline: str | None = None) -> list[Element]:
    """The elements that hold the article: its text block and the siblings that belong to it.  `headline` (the
    page title) finds the story's `<h1>`: on a page that carries several stories, the block in the same
    `<article>` as that headline wins (HEADLINE_BONUS)."""
    body = doc.find(".//body")
    body = body if body is not None else doc
    scores = _paragraph_votes(body)
    if not scores:
        return [_fallback(doc, body)]
    story = _headline_article(body, headline)
    final = {el: score * (1.0 - _link_density(el)) * (HEADLINE_BONUS if story is not None and (
        el is story or _is_ancestor(story, el) or _is_ancestor(el, story)) else 1.0)
             for el, score in sorted(scores.items(), key=lambda item: -item[1])[:8]}
    ranked = sorted(final.items(), key=lambda item: -item[1])
    top, top_score = ranked[0]
    top = _shared_ancestor(top, top_score, ranked=ranked, body=body)
    top = _outer_wrapper(top, body)
    return _with_siblings(top, final.get(top, top_score), scores=scores, body=body)


def _headline_article(body: Element, headline: str | None) -> Element | None:
    """The `<article>` whose `<h1>` (else `<h2>`) names the page's title, when the page has more than one."""
    if not headline:
        return None
    articles = [a for a in body.iter("article")]
    if len(articles) < 2:
        return None
    want = set(_TOKEN.findall(headline.lower()))
    for level in ("h1", "h2"):
        for heading in body.iter(level):
            words = set(_TOKEN.findall(_text_content(heading).lower()))
            if want and words and len(want & words) >= 0.6 * max(len(want), len(words)):
                story = next((a for a in heading.iterancestors("article")), None)
                if story is not None:
                    return story
    return None


def _paragraph_votes(body: Element) -> dict[Element, float]:
    scores: dict[Element, float] = {}
    unlikely: dict[Element, bool] = {}
    for p in body.iter("p", "pre", "td"):
        text = _text_content(p)
        length = len(text.strip())
        if length < MIN_PARAGRAPH or _under_unlikely(p, unlikely):
            continue
        vote = 1.0 + text.count(",") + min(length // 100, 3)
        el = p.getparent()
        for level in range(VOTE_LEVELS):
            if el is None or el.tag == "html":
                break
            if el not in scores:
                scores[el] = _weight(el)
            scores[el] += vote if level == 0 else vote / (2 if level == 1 else 3 * level)
            el = el.getparent()
    return scores


def _under_unlikely(el: Element, cache: dict[Element, bool]) -> bool:
    """Whether an ancestor is an unlikely candidate (comments, sidebars, ...); cached per element."""
    chain = []
    verdict = False
    node = el.getparent()
    while node is not None:
        if node in cache:
            verdict = cache[node]
            break
        chain.append(node)
        if node.tag in _UNLIKELY_TAGS or _unlikely_words(node):
            verdict = True
            break
        node = node.getparent()
    for node in chain:
        cache[node] = verdict
    return verdict


def _unlikely_words(el: Element) -> bool:
    names = f"{el.get('class') or ''} {el.get('id') or ''}"
    if not names.strip() or el.tag in ("body", "article", "main"):
        return False
    words = set(_TOKEN.findall(names.lower()))
    return bool(words & _UNLIKELY) and not words & _MAYBE


def _weight(el: Element) -> float:
    weight = float(_TAG_WEIGHT.get(el.tag, 0))
    if el.get("itemprop") == "articleBody":
        weight += 2 * CLASS_WEIGHT
    names = f"{el.get('class') or ''} {el.get('id') or ''}"
    if names.strip():
        words = set(_TOKEN.findall(names.lower()))
        if words & _POSITIVE:
            weight += CLASS_WEIGHT
        if words & _NEGATIVE:
            weight -= CLASS_WEIGHT
    return weight


def _link_density(el: Element) -> float:
    total = len(_text_content(el))
    if not total:
        return 0.0
    links = sum(len(_text_content(a)) for a in el.iter("a"))
    return min(1.0, links / total)


def _shared_ancestor(top: Element, top_score: float, *, ranked, body: Element) -> Element:
    """An ancestor of the winner that holds SHARED_ANCESTOR near-winners (article steps, sections of a story)."""
    near = [el for el, score in ranked[1:] if score >= 0.75 * top_score]
    if len(near) + 1 < SHARED_ANCESTOR:
        return top
    node = top.getparent()
    while node is not None and node is not body:
        inside = sum(1 for el in near if _is_ancestor(node, el))
        if inside + 1 >= SHARED_ANCESTOR:
            return node
        node = node.getparent()
    return top


def _outer_wrapper(top: Element, body: Element) -> Element:
    """The outermost of the wrappers that hold only the winner (Readability: "if the top candidate is the only
    child, use its parent"): the story's other sections and its figures are the siblings of that wrapper
    (Quanta: five nested `<div>`s around each text section, the captioned figures between the sections)."""
    parent = top.getparent()
    while parent is not None and parent is not body and parent.tag != "html" \
            and sum(1 for c in parent if isinstance(c.tag, str)) == 1:
        top, parent = parent, parent.getparent()
    return top


def _is_ancestor(node: Element, el: Element) -> bool:
    el = el.getparent()
    while el is not None:
        if el is node:
            return True
        el = el.getparent()
    return False


def _with_siblings(top: Element, top_score: float, *, scores: dict[Element, float], body: Element) -> list[Element]:
    """The winner, its siblings that score well, and the captioned pictures in the siblings of it and of its
    parent (a lead photo in the story's header sits one level up more often than not)."""
    parent = top.getparent()
    if parent is None or top is body:
        return [top]
    threshold = max(10.0, SIBLING_SHARE * top_score)
    block = [top]
    for level, node in enumerate((top, parent)):
        container = node.getparent()
        if container is None or (level and (node is body or container.tag == "html")):
            break
        for sib in container:
            if sib is node or not isinstance(sib.tag, str):
                continue
            if level == 0 and scores.get(sib, 0.0) >= threshold:
                block.append(sib)
            else:
                block += _pictures_in(sib, photo_block=level == 0)
    return block


def _pictures_in(el: Element, *, photo_block: bool = False) -> list[Element]:
    """The figures and pictures of a sibling block, with little text each, outside unlikely elements.
    `photo_block` (a sibling of the text block itself): also a captioned picture without `<figure>`: one `<img>`,
    a caption's worth of text, no link (`<div class="inline-photo"><img><span>caption` beside the `<article>`)."""
    if el.tag in _UNLIKELY_TAGS or _unlikely_words(el):
        return []
    found = [el] if el.tag in ("figure", "picture") else list(el.iter("figure"))
    if photo_block and not found and len(el.findall(".//img")) == 1 and el.find(".//a[@href]") is None \
            and MIN_PARAGRAPH <= len(_text_content(el).strip()) <= PHOTO_BLOCK_TEXT:
        return [el]
    return [fig for fig in found if fig.find(".//img") is not None and len(_text_content(fig).strip()) <= SIBLING_TEXT
            and not _unlikely_between(fig, el)]


def _unlikely_between(el: Element, top: Element) -> bool:
    node = el.getparent()
    while node is not None and node is not top:
        if node.tag in _UNLIKELY_TAGS or _unlikely_words(node):
            return True
        node = node.getparent()
    return False


def _fallback(doc: Element, body: Element) -> Element:
    """No paragraph of text (photo pages, galleries): articleBody, the largest `<article>`, main, else body."""
    found = next(iter(doc.xpath(".//*[@itemprop='articleBody']")), None)
    if found is not None:
        return found
    articles = doc.findall(".//article")
    if articles:
        return max(articles, key=lambda a: len(_text_content(a)))
    main = doc.find(".//main")
    return main if main is not None and len(_text_content(main).strip()) else body
