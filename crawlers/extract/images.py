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
            for word in self.words:  # a loop: a third faster than any() over a generator
                if word in low:
                    break
            else:
                return None
        return self.pattern.search(text)


# a placeholder's file name is the word, then nothing or a separator: "blank.gif", "lazy-placeholder.png",
# "spacer_1x1.gif"; never a word that starts with it ("blanket-coverage.png" is a screenshot)
_PLACEHOLDER_SRC = _Words(("blank", "spacer", "pixel", "transparent", "placeholder", "grey", "gray", "loading",
                           "lazy", "lazyload", "1x1", "clear"),
                          r"^data:|(?:^|/)(?:{})s?(?:[-_\d][\w-]*)?\.(?:gif|png|jpg|svg)(?:$|\?)", also=("data:",))
# class/id words of the image or its near ancestors that mark chrome rather than content.  They are matched as
# whole parts of a class token ("ad-slot", "c-related__img"), never inside words ("shunno-share" is "share" but
# "adaptive" is not "ad"), and a token that negates them ("no-share", "noads") marks nothing.
_CHROME_WORDS = frozenset((
    "logo", "logos", "icon", "icons", "favicon", "avatar", "avatars", "sprite", "badge", "emoji", "emoticon", "pixel",
    "tracking", "tracker", "spacer", "beacon", "gravatar", "byline", "headshot", "ad", "ads", "advert", "adverts",
    "advertisement", "adslot", "banner", "promo", "sponsor", "sponsored", "doubleclick", "share", "sharing", "social",
    "related", "recommended", "outbrain", "taboola", "teaser", "comment", "comments", "rating", "loader", "spinner"))
_CHROME_COMPOUNDS = ("profile-pic", "author-photo", "author-image", "author-avatar")
_NEGATIONS = ("no", "not", "non", "without")
_TOKEN_PARTS = re.compile(r"[-_]+")
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
# "/ad/" that is a slice of a hash, beside other short hex folders (Wikimedia's /thumb/a/ad/, /ad/93/9f09.../)
_HASH_SHARD = re.compile(r"/[0-9a-f]{1,2}/ad/|/ad/[0-9a-f]{2}/", re.IGNORECASE)
_NON_PHOTO_EXT = _Words((".svg", ".ico", ".cur", "/svg/"), r"(?:\.svg|\.ico|\.cur)(?:$|[?#])|/(?:render/)?svg/",
                        also=(".svg",))  # Wikipedia's formulas: /media/math/render/svg/<hash>
_SRCSETS = _LAZY_SRCSET + ("srcset",)
_MAX_SEGMENT = 255  # longest file name most file systems and CDNs allow
_ABSOLUTE = re.compile(r"https?://[^/\s#?]")
_SIDE = re.compile(r"\s*(\d+)(?:px)?\s*$")
MAX_CANDIDATES = 4  # the largest this many URLs of a picture: enough to meet its og:image, cheaper than all
MIN_SIDE = 50  # px: declared width or height below this is chrome (icons, dividers, pixels)


def parse_srcset(value: str | None) -> list[tuple[str, float]]:
    """`a.jpg 480w, b.jpg 1024w` -> [(url, 480.0), (url, 1024.0)]; density descriptors count x1000.

    URLs are split on whitespace first, as the HTML standard does, so a URL with commas inside (a `data:` URI, a
    CDN transform such as `c_fill,w_80`) stays whole: splitting on every comma turned the base64 tail of a `data:`
    URI into a relative path that resolved to a broken address on the page's host."""
    if not value:
        return []
    out: list[tuple[str, float]] = []
    url: str | None = None
    for token in value.split():
        if url is None:
            if token.endswith(","):  # a URL without descriptor
                out.append((token.rstrip(","), 1000.0))
            else:
                url = token.lstrip(",")
            continue
        desc, _, rest = token.partition(",")  # "480w,next.jpg" when the space after the comma is missing
        out.append((url, _descriptor(desc)))
        url = rest or None
    if url:
        out.append((url, 1000.0))  # bare URL = 1x
    return [(u, s) for u, s in out if u and not u.startswith(("(", ")"))]


def _descriptor(desc: str) -> float:
    desc = desc.lower()
    try:
        return float(desc[:-1]) * (1000.0 if desc.endswith("x") else 1.0) if desc[-1:] in ("w", "x") else 1000.0
    except ValueError:
        return 0.0


def _attr(el: Element, name: str) -> str:
    return (el.get(name) or "").strip()


def image_candidates(img: Element, base_url: str) -> list[tuple[float, str]]:
    """The largest plausible URLs of an `<img>` (and its `<picture>` sources), absolute, largest first, as
    (size, url); at most MAX_CANDIDATES.

    Sizes are srcset `w` widths (`x` densities count x1000); a lazy attribute ranks above `src` (it holds the
    real image where `src` holds a placeholder or a thumbnail); placeholders and implausible URLs are left out."""
    attrib = img.attrib
    if not any(name.startswith("data") or name in _LAZY_SRC or name == "srcset" for name in attrib) \
            and not _in_picture(img):
        src = (attrib.get("src") or "").strip()  # a plain <img src> (logos, icons, inline pictures): one candidate
        if not src or _PLACEHOLDER_SRC.search(src) or not plausible_url(src):
            return []
        absolute = absolute_url(src, base_url)
        return [(0.0, absolute)] if absolute else []
    raw: list[tuple[float, str]] = []
    for name in _SRCSETS:
        if name in attrib:
            raw += [(size, url) for url, size in parse_srcset(attrib[name])]
    picture = picture_of(img)
    if picture is not None:
        for source in picture.iter("source"):
            mtype = _attr(source, "type").lower()
            if mtype and not mtype.startswith("image/") or "svg" in mtype:
                continue
            for name in _SRCSETS:
                raw += [(size, url) for url, size in parse_srcset(_attr(source, name))]
    for rank, name in enumerate(_lazy_names(attrib)):
        value = attrib[name].strip()
        if value and not _PLACEHOLDER_SRC.search(value):
            raw.append((0.5 - rank / 100.0, value))
    src = (attrib.get("src") or "").strip()
    if src and not _PLACEHOLDER_SRC.search(src):
        raw.append((0.0, src))
    out: list[tuple[float, str]] = []
    tried: set[str] = set()
    seen: set[str] = set()
    for size, url in sorted(raw, key=lambda c: -c[0]):
        absolute = absolute_url(url, base_url) if url not in tried and plausible_url(url) else None
        tried.add(url)
        if absolute and absolute not in seen:
            seen.add(absolute)
            out.append((size, absolute))
            if len(out) == MAX_CANDIDATES:
                break
    return out


def _in_picture(img: Element) -> bool:
    parent = img.getparent()
    return parent is not None and parent.tag == "source" or picture_of(img) is not None


def picture_of(img: Element) -> Element | None:
    """The `<picture>` of an `<img>`: within three levels, not counting `<source>` elements.  libxml2 does not
    know `<source>` is void and nests each next element inside the one before, so a `<picture>` with ten sources
    (The Guardian, Newsweek) puts its `<img>` ten levels down."""
    el = img.getparent()
    levels = 0
    while el is not None and levels < 3:
        if el.tag == "picture":
            return el
        if el.tag != "source":
            levels += 1
        el = el.getparent()
    return None


def _lazy_names(attrib) -> list[str]:
    """The lazy-loading attributes present: the known names in their order, then any other `data-*src`."""
    names = [name for name in _LAZY_SRC if name in attrib]
    names += [name for name in attrib if name.startswith("data-") and name.endswith("src") and name not in names
              and name not in _LAZY_SRCSET]
    return names


def best_image_url(img: Element, base_url: str) -> str | None:
    """The largest plausible candidate of an `<img>` (and its `<picture>` sources); None for placeholders only."""
    found = image_candidates(img, base_url)
    return found[0][1] if found else None


def plausible_url(url: str) -> bool:
    """False for what cannot be an image address: templates (`{width}`, `${src}`), text with spaces, `data:`
    fragments and other blobs (a path segment longer than any file name)."""
    if not url or len(url) > 2048 or url.startswith(("data:", "javascript:", "about:", "blob:")):
        return False
    if any(c in url for c in "{}<>\"" ) or "%7B" in url or " " in url:
        return False
    path = url.split("?", 1)[0]
    return all(len(segment) <= _MAX_SEGMENT for segment in path.split("/"))


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


def hard_chrome(img: Element, url: str) -> bool:
    """What no other evidence outweighs: a non-photo file type, a tracking/ad host, a chrome file name or
    directory, a declared side under MIN_SIDE px."""
    return is_chrome_url(url) or tiny(img)


def tiny(img: Element) -> bool:
    """A declared width or height under MIN_SIDE px (icons, dividers, tracking pixels): known before any URL."""
    for name in ("width", "height"):
        value = img.get(name)
        if value:
            side = _declared_side(value.strip())
            if side is not None and side < MIN_SIDE:
                return True
    return False


def chrome_points(img: Element, seen: dict | None = None) -> int:
    """How much the markup says "chrome" (logo, ad, share bar, avatar, ...): 2 for the image's own class or id,
    plus 2 for a `<nav>`/`<footer>`/`<aside>` or 1 for a chrome-named element among its four nearest ancestors.
    The caller weighs this against the content evidence (a captioned figure, the content block, the og:image).

    `seen` caches the verdict on ancestors across the images of one page (they share most ancestors)."""
    points = 2 if _chrome_words(f"{_attr(img, 'class')} {_attr(img, 'id')}") else 0
    el = img.getparent()
    for _ in range(4):  # a few ancestors: <a class="logo"><img>, <div class="ad-slot"><img>
        if el is None:
            break
        verdict = seen.get(el) if seen is not None else None
        if verdict is None:
            verdict = 2 if el.tag in ("nav", "footer", "aside") else int(
                _chrome_words(f"{_attr(el, 'class')} {_attr(el, 'id')}"))
            if seen is not None:
                seen[el] = verdict
        if verdict:
            return points + verdict
        el = el.getparent()
    return points


def is_chrome(img: Element, url: str, seen: dict | None = None) -> bool:
    """Chrome by the URL or the markup alone, where no content evidence is weighed (images inside feed HTML)."""
    return hard_chrome(img, url) or chrome_points(img, seen) > 0


def declared_size(img: Element) -> tuple[int, int]:
    """(width, height) from the `width`/`height` attributes, 0 where absent."""
    return _declared_side(_attr(img, "width")) or 0, _declared_side(_attr(img, "height")) or 0


@lru_cache(maxsize=8192)
def _chrome_words(class_and_id: str) -> bool:
    """Whether a class/id token marks chrome (see `_CHROME_WORDS`); cached, as a site's templates repeat the same
    few class strings."""
    if not class_and_id.strip():
        return False
    for token in class_and_id.lower().split():
        parts = _TOKEN_PARTS.split(token)
        if parts[0] in _NEGATIONS or token.startswith(("noads", "noshare")):
            continue
        if any(part in _CHROME_WORDS or part.rstrip("0123456789") in _CHROME_WORDS for part in parts):
            return True
        if any(compound in token for compound in _CHROME_COMPOUNDS):
            return True
    return False


@lru_cache(maxsize=8192)
def is_chrome_url(url: str) -> bool:
    """The URL-only part of `hard_chrome`, for images named in metadata (og:image, JSON-LD, feeds).  Cached: a
    site's template names the same logos, icons and ad slots on every page."""
    return bool(_NON_PHOTO_EXT.search(url) or _CHROME_HOSTS.search(url)
                or _CHROME_FILE.search(_file_name(url)))


def _file_name(url: str) -> str:
    path = url_path(url)
    if _CHROME_DIR.search(path) and not _HASH_SHARD.search(path):
        return "icon"  # a chrome directory marks every file in it
    return path.rsplit("/", 1)[-1]


def url_host(url: str) -> str | None:
    """`urlsplit(url).hostname` of an http(s) URL (lower case, no userinfo or port), without urlsplit's general
    parsing in the common case."""
    scheme_end = url.find("://")
    if 0 < scheme_end <= 5 and _plain(url) and url[:scheme_end].lower() in ("http", "https"):
        rest = url[scheme_end + 3:]
        end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
        netloc = rest[:end].rpartition("@")[2]
        return netloc.partition(":")[0].lower() or None
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def url_path(url: str) -> str:
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
