"""A small reference extractor, run over every article, finds exactly the truth's pairs and candidates.

It knows the demo's markup (this is the demo's self-check, not a product extractor): JSON-LD as one object or as
an `@graph` with an `@id`-referenced ImageObject, an og:image that may be a smaller variant of the lead, absolute
`src`s, and a teaser card (a picture inside a link to another story) whose picture is the truth's teaser row."""

from __future__ import annotations

import html
import json
import re
from urllib.parse import urlsplit

import lxml.html

SKIP_CLASSES = re.compile(r"\b(logo|icon|avatar|ad|ads|advert)\b")


def _text(el) -> str:
    return " ".join(el.text_content().split())


def _largest(img) -> str:
    """The URL of the largest `w` candidate across <picture> sources and the img's own srcset."""
    sets = [img.get("srcset") or ""]
    picture = next((a for a in img.iterancestors() if a.tag == "picture"), None)
    if picture is not None:  # lxml nests <img> inside a <source> that is not written as <source />
        sets += [s.get("srcset") or "" for s in picture.iter("source")]
    best, best_w = img.get("data-src") or img.get("src"), 0
    for entry in ",".join(sets).split(","):
        parts = entry.split()
        if len(parts) == 2 and parts[1].endswith("w") and int(parts[1][:-1]) > best_w:
            best, best_w = parts[0], int(parts[1][:-1])
    return best


def _path(url: str) -> str:
    return urlsplit(url).path if url.startswith("http") else url


def _is_teaser(img) -> bool:
    return any(a.tag == "a" and (a.get("href") or "").startswith("/news/") for a in img.iterancestors())


def _is_content(img) -> bool:
    chain = [img] + list(img.iterancestors())
    if any(SKIP_CLASSES.search(e.get("class") or "") for e in chain) or _is_teaser(img):
        return False
    src = _path(img.get("data-src") or img.get("src") or "")
    return src.startswith("/img/") and not (img.get("width") == "1" and img.get("height") == "1")


def _variant_of(url: str, native: str) -> bool:
    """`/img/.../123-slug-800w.jpg` is a smaller variant of `/img/.../123-slug.jpg` (or .webp)."""
    return url.rsplit("-", 1)[0] == native.rsplit(".", 1)[0]


def extract(body: bytes) -> dict[str, tuple[tuple[str, str], ...]]:
    doc = lxml.html.fromstring(body)
    meta = {m.get("property") or m.get("name"): m.get("content") for m in doc.iter("meta")}
    og_image, og_alt = meta.get("og:image", ""), meta.get("og:image:alt") or meta.get("twitter:image:alt")
    jsonld = {}
    for script in doc.xpath('//script[@type="application/ld+json"]'):
        data = json.loads(script.text)
        for node in data.get("@graph", [data]):
            images = node.get("image", []) if node.get("@type") == "NewsArticle" else [node]
            for image in images if isinstance(images, list) else [images]:
                if image.get("@type") == "ImageObject" and "url" in image:
                    jsonld[image["url"]] = image.get("caption")
    out = {}
    for img in doc.iter("img"):
        if not _is_content(img):
            continue
        url = _path(_largest(img))
        cands = []
        fig = next((a for a in img.iterancestors() if a.tag == "figure"), None)
        caption = fig.find("figcaption") if fig is not None else None
        if caption is not None and _text(caption):
            cands.append((_text(caption), "figcaption"))
        absolute = og_image.split("/img/", 1)[0] + url
        if jsonld.get(absolute):
            cands.append((jsonld[absolute], "jsonld"))
        if img.get("alt"):
            cands.append((img.get("alt"), "alt"))
        if (absolute == og_image or _variant_of(_path(og_image), url)) and og_alt:
            cands.append((og_alt, "og_image_alt"))
        out[url] = tuple(cands)
    return out


def test_reference_extractor_finds_exactly_the_truth(site):
    news = [t for t in site.truth if t.source_kind == "news"]
    by_page, teasers = {}, {}
    for t in news:
        if t.role == "teaser":
            teasers.setdefault(t.page_url, set()).add(t.image_url)
        else:
            by_page.setdefault(t.page_url, {})[t.image_url] = t.caption_candidates
    assert len(by_page) == len(site.plan.articles) and teasers
    for page, expected in by_page.items():
        status, headers, body = site.response(page)
        assert status == 200
        assert extract(body) == expected, page
        doc = lxml.html.fromstring(body)
        found = {_path(i.get("src")) for i in doc.iter("img") if _is_teaser(i)}
        assert found == teasers.get(page, set()), page
        for skipped in (b'class="logo"', b'class="avatar"', b'/ads/banner', b'width="1" height="1"',
                        b'class="icon"'):
            assert skipped in body


def test_entity_and_mojibake_markup(site):
    entity = next(t for t in site.truth if t.trouble == "entity")
    body = site.response(entity.page_url)[2].decode()
    assert "&amp;amp;" in body and html.unescape("&amp;amp;") in entity.caption_candidates[0][0]
    assert entity.caption.count("&") == 1 and "&amp;" not in entity.caption
    moji = next(t for t in site.truth if t.trouble == "mojibake")
    assert "Ã" in moji.caption_candidates[0][0] and "é" in moji.caption


def test_social_context_is_the_post_text(site):
    for t in site.truth:
        if t.source_kind == "mastodon":
            status = next(s for s in site.plan.statuses if s.path == t.page_url)
            content = lxml.html.fromstring(json_content(site, status)).text_content()
            assert dict((o, c) for c, o in t.caption_candidates)["context"] == " ".join(content.split())


def json_content(site, status) -> str:
    from crawlers.demo.social_api import status_json

    return status_json(status, site.plan, site.base_url)["content"]
