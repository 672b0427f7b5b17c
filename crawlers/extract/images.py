"""Choosing the image URL of an `<img>`/`<picture>` and telling content images from chrome.

Pages ship several URLs per picture (src, srcset, lazy-loading attributes, `<source>` elements); we keep the
largest candidate, because the clean stage can always shrink an image but never recover lost pixels.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

from lxml.etree import _Element as Element

_LAZY_SRC = ("data-src", "data-lazy-src", "data-original", "data-lazy", "data-url", "data-hi-res-src", "datasrc",
             "data-full-src", "data-orig-file", "data-large-file")
_LAZY_SRCSET = ("data-srcset", "data-lazy-srcset")


class _Words:
    """A case-insensitive pattern every match of which contains one of `words` (lower case): an ASCII text
    that contains none of them is answered by substring tests, without the pattern's search over every
    position (most image URLs and attributes match no chrome pattern, and these searches dominated extraction).
    Other texts go to the pattern, whose case folding covers more than ASCII."""

    def __init__(self, words: tuple[str, ...], template: str = "{}", *, also: tuple[str, ...] = ()):
        self.pattern = re.compile(template.format("|".join(map(re.escape, words))), re.IGNORECASE)
        self.words = words + also  # `also`: the literals of the template's other alternatives

    def search(self, text: str) -> re.Match | None:
        if text.isascii():
            low = text.lower()
            if not any(word in low for word in self.words):
                return None
        return self.pattern.search(text)


_PLACEHOLDER_SRC = _Words(("blank", "spacer", "pixel", "transparent", "placeholder", "grey", "gray", "loading",
                           "lazy", "1x1", "clear"),
                          r"^data:|(?:^|/)(?:{})[\w-]*\.(?:gif|png|jpg|svg)(?:$|\?)", also=("data:",))
# class/id words of the image or its near ancestors that mark chrome rather than content
_CHROME = re.compile(r"(?:^|[\W_])(?:logo|logos|icon|icons|favicon|avatar|avatars|sprite|badge|emoji|emoticon|"
                     r"pixel|tracking|tracker|spacer|beacon|gravatar|profile-pic|author-photo|byline|headshot|"
                     r"ad|ads|advert|adverts|advertisement|adslot|banner|promo|sponsor|sponsored|doubleclick|"
                     r"share|sharing|social|related|recommended|outbrain|taboola|teaser|comments?|"
                     r"rating|loader|spinner)(?:$|[\W_\d])", re.IGNORECASE)
# file-name words: narrower, because photo slugs contain ordinary words ("star-wars.jpg")
_CHROME_FILE = _Words(("logo", "icon", "favicon", "avatar", "sprite", "pixel", "spacer", "blank", "badge", "emoji",
                       "gravatar", "1x1", "tracking", "beacon", "placeholder", "author", "headshot"),
                      r"(?:^|[\W_])(?:{})(?:$|[\W_\d])")
_CHROME_HOSTS = _Words(("doubleclick.net", "googlesyndication.com", "google-analytics.com", "facebook.com/tr",
                        "scorecardresearch.com", "quantserve.com", "pixel.", "adservice.", "amazon-adsystem.com",
                        "gravatar.com", "outbrain.com", "taboola.com", "feedburner.com/~r", "feeds.feedburner.com/~ff",
                        "stats.wp.com"))
_CHROME_DIR = _Words(tuple(f"/{w}/" for w in ("icon", "icons", "logo", "logos", "ad", "ads", "advert", "adverts",
                                               "avatar", "avatars", "sprite", "sprites", "badge", "badges", "emoji",
                                               "emojis", "pixel", "pixels", "tracking", "banner", "banners")))
_NON_PHOTO_EXT = _Words((".svg", ".ico", ".cur"), r"(?:{})(?:$|[?#])")
_SRCSETS = _LAZY_SRCSET + ("srcset",)
_ABSOLUTE = re.compile(r"https?://[^/\s#?]")
_SIDE = re.compile(r"\s*(\d+)(?:px)?\s*$")
MIN_SIDE = 50  # px: declared width or height below this is chrome (icons, dividers, pixels)


def parse_srcset(value: str | None) -> list[tuple[str, float]]:
    """`a.jpg 480w, b.jpg 1024w` -> [(url, 480.0), (url, 1024.0)]; density descriptors count x1000."""
    if not value:
        return []
    out: list[tuple[str, float]] = []
    for part in value.split(","):
        bits = part.strip().split()
        if not bits:
            continue
        url, size = bits[0], 0.0
        if len(bits) > 1:
            desc = bits[1].lower()
            try:
                size = float(desc[:-1]) * (1000.0 if desc.endswith("x") else 1.0)
            except ValueError:
                size = 0.0
        else:
            size = 1000.0  # bare URL = 1x
        out.append((url, size))
    # URLs that contain commas (rare) break the split; drop fragments that are obviously not URLs
    return [(u, s) for u, s in out if u and not u.startswith(("(", ")"))]


def _best_of_srcset(value: str | None) -> tuple[str | None, float]:
    items = parse_srcset(value)
    if not items:
        return None, -1.0
    url, size = max(items, key=lambda it: it[1])
    return url, size


def _attr(el: Element, name: str) -> str:
    return (el.get(name) or "").strip()


def best_image_url(img: Element, base_url: str) -> str | None:
    """The largest candidate of an `<img>` (and its `<picture>` sources), absolute; None for placeholders only."""
    attrib = img.attrib
    candidates: list[tuple[float, str]] = []
    for name in _SRCSETS:
        if name in attrib:
            url, size = _best_of_srcset(attrib[name].strip())
            if url:
                candidates.append((size, url))
    picture = img.getparent()
    for _ in range(3):  # libxml2 does not know <source> is void and nests the <img> inside it
        if picture is None or picture.tag == "picture":
            break
        picture = picture.getparent()
    if picture is not None and picture.tag == "picture":
        for source in picture.iter("source"):
            mtype = _attr(source, "type").lower()
            if mtype and not mtype.startswith("image/") or "svg" in mtype:
                continue
            for name in _SRCSETS:
                url, size = _best_of_srcset(_attr(source, name))
                if url:
                    candidates.append((size, url))
    # lazy single-URL attributes usually hold the full-size image while `src` holds a placeholder or a thumb
    for rank, name in enumerate(_LAZY_SRC):
        value = attrib.get(name)
        if value and value.strip() and not _PLACEHOLDER_SRC.search(value.strip()):
            candidates.append((0.5 - rank / 100.0, value.strip()))
            break
    src = (attrib.get("src") or "").strip()
    if src and not _PLACEHOLDER_SRC.search(src):
        candidates.append((0.0, src))
    for _size, url in sorted(candidates, key=lambda c: -c[0]):
        absolute = absolute_url(url, base_url)
        if absolute:
            return absolute
    return None


def absolute_url(url: str | None, base_url: str) -> str | None:
    """Resolve against the page (or `<base href>`); only http(s) results, fragments dropped."""
    if not url:
        return None
    url = url.strip()
    if _ABSOLUTE.match(url) and _plain(url):  # the common case, without urljoin's parsing
        cut = url.find("#")
        return url if cut < 0 else url[:cut]
    if url.startswith("data:") or url.startswith("javascript:"):
        return None
    if url.startswith("/") and not url.startswith("//") and "/." not in url and "\\" not in url and _plain(url):
        origin = _origin(base_url)  # a root-relative path, the common case, without urljoin's parsing
        if origin:
            cut = url.find("#")
            return origin + (url if cut < 0 else url[:cut])
    try:
        absolute = urljoin(base_url, url)
        parts = urlsplit(absolute)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return absolute.split("#", 1)[0]


def _plain(url: str) -> bool:
    """ASCII without brackets: a URL that `urlsplit` cannot reject (it refuses a malformed `[IPv6]` host and a
    non-ASCII host that normalises to a delimiter), so the fast paths may skip it."""
    return url.isascii() and "[" not in url and "]" not in url


@lru_cache(maxsize=1024)
def _origin(base_url: str) -> str | None:
    """`scheme://netloc` of an http(s) base URL; None for anything else (urljoin decides those)."""
    try:
        parts = urlsplit(base_url)
    except ValueError:
        return None
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else None


def _declared_side(value: str) -> int | None:
    m = _SIDE.match(value) if value else None
    return int(m.group(1)) if m else None


def is_chrome(img: Element, url: str, seen: dict | None = None) -> bool:
    """Logos, icons, avatars, tracking pixels, ads and decorative images: never a content photo.

    `seen` caches the verdict on ancestors across the images of one page (they share most ancestors)."""
    if _NON_PHOTO_EXT.search(url) or _CHROME_HOSTS.search(url):
        return True
    for side in (_declared_side(_attr(img, "width")), _declared_side(_attr(img, "height"))):
        if side is not None and side < MIN_SIDE:
            return True
    if _chrome_words(f"{_attr(img, 'class')} {_attr(img, 'id')}") or _CHROME_FILE.search(_file_name(url)):
        return True
    el = img.getparent()
    for _ in range(4):  # a few ancestors: <a class="logo"><img>, <div class="ad-slot"><img>
        if el is None:
            break
        verdict = seen.get(el) if seen is not None else None
        if verdict is None:
            verdict = el.tag in ("nav", "footer", "aside") or _chrome_words(f"{_attr(el, 'class')} {_attr(el, 'id')}")
            if seen is not None:
                seen[el] = verdict
        if verdict:
            return True
        el = el.getparent()
    return False


@lru_cache(maxsize=8192)
def _chrome_words(class_and_id: str) -> bool:
    """Whether class/id words mark chrome; cached, as a site's templates repeat the same few class strings."""
    return bool(_CHROME.search(class_and_id))


def is_chrome_url(url: str) -> bool:
    """The URL-only part of `is_chrome`, for images named in metadata (og:image, JSON-LD, feeds)."""
    return bool(_NON_PHOTO_EXT.search(url) or _CHROME_HOSTS.search(url)
                or _CHROME_FILE.search(_file_name(url)))


def _file_name(url: str) -> str:
    path = _path(url)
    if _CHROME_DIR.search(path):
        return "icon"  # a chrome directory marks every file in it
    return path.rsplit("/", 1)[-1]


def _path(url: str) -> str:
    """`urlsplit(url).path` of an http(s) URL; without urlsplit's general parsing in the common case, and ""
    for a URL urlsplit rejects."""
    scheme_end = url.find("://")
    if 0 < scheme_end <= 5 and _plain(url) and url.isprintable() and url[:scheme_end].lower() in ("http", "https"):
        rest = url[scheme_end + 3:]
        start = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
        end = min((i for i in (rest.find("?", start), rest.find("#", start)) if i >= 0), default=len(rest))
        return rest[start:end] if rest[start:start + 1] == "/" else ""
    try:
        return urlsplit(url).path
    except ValueError:
        return ""
