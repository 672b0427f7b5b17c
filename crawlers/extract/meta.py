"""Page-level metadata: `<meta>` tags (Open Graph, Twitter, robots, TDMRep), JSON-LD, dates, language."""

from __future__ import annotations

import json
import re
import warnings
from datetime import datetime, timezone

from dateutil import parser as dateparser
from lxml.etree import _Element as Element

from crawlers.extract.text import clean_text

_ARTICLE_TYPES = {"article", "newsarticle", "blogposting", "reportagenewsarticle", "analysisnewsarticle",
                  "opinionnewsarticle", "backgroundnewsarticle", "reviewnewsarticle", "report", "liveblogposting",
                  "techarticle", "scholarlyarticle", "socialmediaposting", "webpage", "photograph"}


def parse_date(value: str | None) -> datetime | None:
    """Any common date string -> aware UTC datetime (naive ones are taken as UTC); None when unreadable."""
    if not value or not isinstance(value, str):
        return None
    value = value.strip()
    try:  # the common case (ISO 8601) without dateutil's slower guessing
        dt = datetime.fromisoformat(value)
    except ValueError:
        dt = None
    try:
        if dt is None:
            with warnings.catch_warnings():  # "EST"-style names: parsed as naive, taken as UTC below
                warnings.simplefilter("ignore", dateparser.UnknownTimezoneWarning)
                dt = dateparser.parse(value)
    except (ValueError, OverflowError, TypeError):
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        return dt.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None


def meta_tags(doc: Element) -> list[tuple[str, str]]:
    """(key, content) of every `<meta>` in document order; key = property or name, lower case."""
    out = []
    for m in doc.iter("meta"):
        key = (m.get("property") or m.get("name") or m.get("itemprop") or "").strip().lower()
        content = m.get("content")
        if key and content is not None:
            out.append((key, content.strip()))
    return out


def first_meta(tags: list[tuple[str, str]], *keys: str) -> str | None:
    for want in keys:
        for key, content in tags:
            if key == want and content:
                return content
    return None


def og_images(tags: list[tuple[str, str]]) -> list[tuple[str, str | None]]:
    """[(og:image url, its alt)]: each og:image:alt belongs to the og:image before it (Open Graph arrays)."""
    images: list[list] = []
    for key, content in tags:
        if key in ("og:image", "og:image:url", "og:image:secure_url"):
            if key != "og:image" and images and images[-1][0] in (None, content):
                images[-1][0] = content
            elif key == "og:image" or not images:
                images.append([content, None])
        elif key == "og:image:alt" and images and images[-1][1] is None:
            images[-1][1] = content
    twitter_alt = first_meta(tags, "twitter:image:alt", "twitter:image:alt_text")
    twitter_img = first_meta(tags, "twitter:image", "twitter:image:src")
    if twitter_img and not any(u == twitter_img for u, _ in images):
        images.append([twitter_img, None])
    if twitter_alt:
        target = next((i for i in images if i[0] == twitter_img), images[0] if images else None)
        if target is not None and target[1] is None:
            target[1] = twitter_alt
    return [(u, a) for u, a in images if u]


def robots_directives(tags: list[tuple[str, str]], *, agent: str = "mmpipe") -> frozenset[str]:
    """Directives of `<meta name="robots">` and of a meta named after our user-agent token."""
    out: set[str] = set()
    for key, content in tags:
        if key in ("robots", agent.lower()):
            out.update(d.strip().lower() for d in content.split(",") if d.strip())
    return frozenset(out)


def json_ld(doc: Element) -> list[dict]:
    """Every JSON-LD object on the page, flattened out of lists and `@graph`; broken blocks are skipped."""
    out: list[dict] = []
    for script in doc.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json":
            continue
        text = (script.text or "").strip()
        if not text:
            continue
        try:
            data = json.loads(text)
        except RecursionError:  # nested deeper than the parser's stack: no metadata worth reading
            continue
        except ValueError:
            try:  # common breakage: raw newlines/tabs inside strings
                data = json.loads(re.sub(r"[\r\n\t]+", " ", text))
            except (ValueError, RecursionError):
                continue
        _flatten(data, out, 0)
    return out


def _flatten(data, out: list[dict], depth: int) -> None:
    if depth > 6:
        return
    if isinstance(data, list):
        for item in data:
            _flatten(item, out, depth + 1)
    elif isinstance(data, dict):
        out.append(data)
        if "@graph" in data:
            _flatten(data["@graph"], out, depth + 1)


def ld_types(obj: dict) -> set[str]:
    t = obj.get("@type")
    types = t if isinstance(t, list) else [t]
    return {str(x).lower().rsplit("/", 1)[-1] for x in types if x}


def is_article_ld(obj: dict) -> bool:
    return bool(ld_types(obj) & (_ARTICLE_TYPES - {"webpage", "photograph"}))


def ld_images(objects: list[dict]) -> list[tuple[str, str | None]]:
    """[(url, caption)] from Article.image (URL, list, ImageObject, `{"@id": ...}` reference) and standalone
    ImageObjects.  A reference is looked up among the page's JSON-LD objects (`@graph` members and their nested
    objects); an `@id` is a node name, never an image address (Yoast's `.../#primaryimage` is the page itself)."""
    by_id = _by_id(objects)
    out: list[tuple[str, str | None]] = []
    for obj in objects:
        types = ld_types(obj)
        if "imageobject" in types:
            _add_image(obj, out, by_id=by_id)
        elif types & _ARTICLE_TYPES:
            for key in ("image", "associatedMedia", "thumbnailUrl", "primaryImageOfPage"):
                value = obj.get(key)
                for item in value if isinstance(value, list) else [value]:
                    _add_image(item, out, by_id=by_id)
    return out


def _by_id(objects: list[dict]) -> dict[str, dict]:
    """Every JSON-LD node with an `@id` and more than a reference's keys, top level or one level down."""
    nodes: dict[str, dict] = {}
    for obj in objects:
        for node in (obj, *(v for v in obj.values() if isinstance(v, dict))):
            ref = node.get("@id")
            if isinstance(ref, str) and set(node) - {"@id", "@type"}:
                nodes.setdefault(ref, node)
    return nodes


def _add_image(item, out: list[tuple[str, str | None]], *, by_id: dict[str, dict]) -> None:
    if isinstance(item, str):
        out.append((item, None))
        return
    if not isinstance(item, dict):
        return
    if not (item.get("url") or item.get("contentUrl")) and isinstance(item.get("@id"), str):
        item = by_id.get(item["@id"], {})  # a reference: the node it names, or nothing
    url = item.get("url") or item.get("contentUrl")
    if isinstance(url, list):
        url = url[0] if url else None
    caption = item.get("caption") or item.get("description")
    if isinstance(caption, dict):
        caption = caption.get("text") or caption.get("@value")
    if isinstance(url, str):
        out.append((url, clean_text(caption) if isinstance(caption, str) else None))


def ld_value(objects: list[dict], key: str) -> str | None:
    for obj in objects:
        if ld_types(obj) & _ARTICLE_TYPES:
            value = obj.get(key)
            if isinstance(value, dict):
                value = value.get("@id") or value.get("url") or value.get("name")
            if isinstance(value, list):
                value = value[0] if value else None
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None
