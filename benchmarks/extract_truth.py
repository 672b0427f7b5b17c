"""Ground truth for the news extractor, derived from the real saved pages of ../shared/fixtures/news.

Shared by `benchmarks/bench_extract.py` and the extractor tests; no product code may import it.  Every rule below
is a statement about the page's own markup (or Readability's verdict on it), written independently of the
extractor, so the benchmark can disagree with the extractor:

- **Pages.** `readability/<name>/source.html.gz` at `http://fakehost/test/page.html` (the URL Readability's own
  test harness used, so the relative URLs of `expected.html` resolve the same way); `scrapinghub/html/*.html.gz`
  at the `url` of `ground-truth.json`; `trafilatura-cache/*.html.gz` at the page's canonical / `og:url`, else at
  a URL built from its file name.
- **One picture** is a union of URLs: every candidate of one `<img>` (src, srcset, lazy `data-*` attributes, the
  `<source>`s of its `<picture>`) in the source page or in `expected.html`, plus URLs whose `size_key` is equal
  (the same file at another size: a distinctive file name once size tokens such as `-1600x1067`, `-800w`,
  `@2x`, `220px-` are cut, wherever it is stored, within the last folder named by an id (`/18636689/`); else
  the path less size/transform segments and size query parameters; a resizing proxy's embedded original URL).
  A URL shared by `<img>`s that otherwise name different URLs is a placeholder and joins nothing when three or
  more such `<img>`s, or only lazy-loaded ones, share it; nor does it name a caption pair's picture (the lazy
  `<img>`'s other candidates do: spokesman.com's `src="sr-loader.png"` beside the photo's `data-srcset`).
- **Content pictures** (readability set) are the `<img>`s of Readability's `expected.html`, less those that are
  not pictures: `data:` URIs, SVG (file or `/svg/` render path) and a declared width or height under 50 px.  The
  page's declared lead picture (below) is counted as content too (Readability often cuts the header that holds
  it); `strict` figures leave it out.
- **Declared lead**: the first `og:image`, else `twitter:image`, else the `image` of the page's JSON-LD article
  (an `@id` reference resolved inside the page's JSON-LD), when it is a plausible image URL.
- **Caption pairs**: each `<figure>` with exactly one picture `<img>` and one `<figcaption>` of its own (nested
  figures count for themselves) with visible text, outside `<nav>`, `<footer>` and `<aside>`, and not a teaser
  (a figure inside a link, or whose image or caption links, to another page).  A pair is recovered when a
  record of that picture has a `figcaption` candidate whose words all occur in the figcaption and which, with
  the record's credit, covers >= 80% of its words (credit labels such as "Photo", "Bild", "courtesy of" left
  out); a figcaption of at most 8 such words that is only a credit is recovered by the record's credit alone.
  Screen-reader-only text ("Media caption") is not caption text.
- **Bad records**: the page's own URL (page, canonical, `og:url`), a non-image URL (a document extension, or a
  site's root), or a second record of a picture already recorded.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urljoin, urlsplit

from lxml import etree

READABILITY_URL = "http://fakehost/test/page.html"
MIN_PICTURE_SIDE = 50
SETS = ("readability", "scrapinghub", "trafilatura-cache")
_PARSER = etree.HTMLParser(collect_ids=False, default_doctype=False)
_LAZY = ("data-src", "data-lazy-src", "data-original", "data-lazy", "data-url", "data-hi-res-src", "datasrc",
         "data-full-src", "data-orig-file", "data-large-file", "data-srcset", "data-lazy-srcset", "original")
_TLDS = {"de", "at", "ch", "com", "org", "net", "info", "eu", "fr", "uk", "io", "blog", "es", "it", "nl", "be"}
_DOC_EXT = {"html", "htm", "xhtml", "shtml", "asp", "aspx", "jsp", "cfm", "js", "css", "json", "xml", "txt", "pdf",
            "mp4", "webm", "mov", "mp3", "m3u8", "zip"}
_SIZE_PARAMS = {"w", "h", "width", "height", "quality", "q", "fit", "crop", "resize", "auto", "fm", "format", "dpr",
                "s", "sz", "size", "strip", "ssl", "itok", "impolicy", "imwidth", "output-quality", "im"}
_FILE_SIZE = re.compile(r"(?:[-_@.](?:\d{2,5}x\d{2,5}|\d{2,5}w|[1-4]x|scaled|e\d{10,})(?=[-_.]|$))+", re.IGNORECASE)
_SEGMENT_SIZE = re.compile(r"^(?:\d{1,5}|\d{1,5}x\d{1,5}|\d+_\d+_\d+_\d+|max|fit-in|resize|crop|thumbs?|"
                           r"[a-z]{1,2}_[^/]*|[^/]*,[^/]*|filters:.*|\d+x\d+:\d+x\d+|smart|full)$", re.IGNORECASE)
_PX_PREFIX = re.compile(r"^\d{2,5}px-")
_IMAGE_EXT = {"jpg", "jpeg", "png", "gif", "webp", "avif", "bmp", "tif", "tiff"}
_GENERIC = {"image", "images", "photo", "picture", "original", "large", "medium", "small", "thumb", "thumbnail",
            "default", "index", "cover", "preview", "master", "source", "hero", "header", "lead", "main", "file",
            "img", "full", "standard", "desktop", "mobile"}
_HIDDEN = re.compile(r"off-?screen|sr-only|visually-hidden|screen-reader", re.IGNORECASE)
_LABEL_WORDS = {"photo", "photograph", "image", "picture", "foto", "bild", "credit", "courtesy", "of", "by", "c"}
_CREDIT_ONLY_WORDS = 8
_EMBEDDED = re.compile(r"/((?:https?:/+)?[a-z0-9-]+(?:\.[a-z0-9-]+)+\.[a-z]{2,}/.+)$", re.IGNORECASE)


@dataclass(frozen=True, eq=False)  # hashable by identity: tests cache per page
class Page:
    set: str
    name: str
    url: str
    body: bytes
    expected: str | None = None  # Readability's expected.html (readability set)


def load_pages(fixtures: Path, sets: tuple[str, ...] = SETS) -> list[Page]:
    """Every real page of the news fixtures, in a stable order."""
    news = Path(fixtures) / "news"
    pages: list[Page] = []
    if "readability" in sets:
        for folder in sorted((news / "readability").iterdir()):
            if (folder / "source.html.gz").is_file() and (folder / "expected.html").is_file():
                pages.append(Page("readability", folder.name, READABILITY_URL,
                                  gzip.open(folder / "source.html.gz").read(),
                                  (folder / "expected.html").read_text(encoding="utf-8")))
    if "scrapinghub" in sets:
        truth = json.loads((news / "scrapinghub" / "ground-truth.json").read_text())
        for key in sorted(truth):
            pages.append(Page("scrapinghub", key, truth[key]["url"],
                              gzip.open(news / "scrapinghub" / "html" / f"{key}.html.gz").read()))
    if "trafilatura-cache" in sets:
        for path in sorted((news / "trafilatura-cache").glob("*.html.gz")):
            body = gzip.open(path).read()
            name = path.name[: -len(".html.gz")]
            pages.append(Page("trafilatura-cache", name, _declared_url(body) or _url_from_name(name), body))
    return pages


def _declared_url(body: bytes) -> str | None:
    doc = parse(body)
    if doc is None:
        return None
    for el in doc.iter("link", "meta"):
        if (el.tag == "link" and "canonical" in (el.get("rel") or "").lower()) or (
                el.tag == "meta" and (el.get("property") or el.get("name")) == "og:url"):
            url = (el.get("href") or el.get("content") or "").strip()
            if url.startswith(("http://", "https://")):
                return url
    return None


def _url_from_name(name: str) -> str:
    labels = name.split(".")
    for i in range(1, len(labels)):
        if labels[i].lower() in _TLDS:
            return f"https://{'.'.join(labels[:i + 1])}/{'/'.join(labels[i + 1:])}"
    return f"https://{name}/"


def parse(body: bytes | str):
    if isinstance(body, bytes):
        from w3lib.encoding import html_to_unicode

        body = html_to_unicode(None, body)[1]
    body = re.sub(r"^\s*<\?xml[^>]*>", "", body, count=1)
    try:
        return etree.fromstring(body, _PARSER) if body.strip() else None
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None


# --- URLs and pictures -------------------------------------------------------------------------------------

def norm_url(url: str) -> str:
    """Scheme-less, fragment-less, trailing-slash-less: for equality of page URLs."""
    url = url.split("#", 1)[0]
    url = re.sub(r"^https?://", "", url.strip(), flags=re.IGNORECASE)
    return url.rstrip("/").lower()


def resolve(url: str | None, base: str) -> str | None:
    if not url or url.strip().startswith(("data:", "javascript:")):
        return None
    try:
        out = urljoin(base, url.strip())
        parts = urlsplit(out)
    except ValueError:
        return None
    return out.split("#", 1)[0] if parts.scheme in ("http", "https") and parts.netloc else None


def size_key(url: str) -> str:
    """The same picture at another size or crop gets the same key (see the module docstring)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    path = unquote(parts.path)
    inner = _EMBEDDED.search(path)
    if inner and "/" in inner.group(1)[:-1]:
        return size_key("http://" + re.sub(r"^https?:/+", "", inner.group(1)))
    for key, value in parse_qsl(parts.query):
        if key.lower() in ("url", "src", "image", "img") and re.match(r"(?:https?:/)?/", value):
            return size_key(urljoin(url, value))
    segments = [s for s in path.split("/") if s]
    name = segments.pop() if segments else ""
    stem, dot, ext = name.rpartition(".")
    stem = _FILE_SIZE.sub("", stem if dot else name)
    stem = _PX_PREFIX.sub("", stem)
    if len(re.sub(r"[\W_]", "", stem)) >= 5 and not re.fullmatch(r"[\d\W_]+", stem) \
            and stem.lower() not in _GENERIC:
        ids = [s for s in segments if re.fullmatch(r"\d{5,}|[0-9a-f]{16,}", s, re.IGNORECASE)]
        return f"file:{ids[-1] if ids else ''}/{stem.lower()}"  # a distinctive name, in its id folder if any
    if re.fullmatch(r"\d{1,5}", stem):  # the file name is only a size: /master/4800.jpg
        stem = ""
    host = ".".join((parts.hostname or "").split(".")[-2:])
    dirs = [s for s in segments if not _SEGMENT_SIZE.match(s)]
    query = "" if dot and ext.lower() in _IMAGE_EXT else \
        "&".join(f"{k}={v}" for k, v in sorted(parse_qsl(parts.query)) if k.lower() not in _SIZE_PARAMS)
    return f"{host}/{'/'.join(dirs)}/{stem}?{query}".lower()


def is_non_image(url: str) -> bool:
    """A URL that cannot be an image: a site's root (`src="/"`) or a document extension (.html, .php is not one:
    image scripts are common).  Paths ending in `/` can be image endpoints (`/resources/r/?i=...`)."""
    path = urlsplit(url).path
    if path in ("", "/"):
        return True
    ext = path.rsplit("/", 1)[-1].rpartition(".")[2].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return ext in _DOC_EXT


def is_not_picture(url: str, el=None) -> bool:
    """Not a picture at all for this truth: data: URIs, SVG, and a declared side under MIN_PICTURE_SIDE px."""
    low = url.lower()
    if low.startswith("data:") or urlsplit(low).path.endswith(".svg") or "/svg/" in low:
        return True
    if el is not None:
        for attr in ("width", "height"):
            m = re.match(r"\s*(\d+)(?:px)?\s*$", el.get(attr) or "")
            if m and int(m.group(1)) < MIN_PICTURE_SIDE:
                return True
    return False


def img_candidates(img, base: str) -> list[str]:
    """Every URL an `<img>` (and its `<picture>`) names, absolute, in attribute order."""
    values = [img.get("src")]
    extra = [a for a in img.attrib if a.startswith("data-") and a.endswith(("src", "srcset")) and a not in _LAZY]
    for attr in ("srcset", *_LAZY, *extra):
        raw = img.get(attr)
        if raw:
            values += _srcset_urls(raw) if "srcset" in attr or " " in raw.strip() else [raw]
    picture = next((a for a in list(img.iterancestors())[:3] if a.tag == "picture"), None)
    if picture is not None:
        for source in picture.iter("source"):
            for attr in ("srcset", "data-srcset"):
                values += _srcset_urls(source.get(attr) or "")
    out = []
    for value in values:
        url = resolve(value, base)
        if url and url not in out:
            out.append(url)
    return out


def _srcset_urls(value: str) -> list[str]:
    """The URLs of a srcset: its whitespace-separated words that are not descriptors (`480w`, `2x`), trailing
    commas cut (URLs may hold commas: `c_fill,w_80/x.jpg`, `data:` URIs)."""
    words = [w.strip(",") for w in value.split()]
    return [w for w in words if w and not re.fullmatch(r"\d+(?:\.\d+)?[wxh]", w)]


class Pictures:
    """Union-find over the URLs of one page: `find(url)` is the picture a URL shows.  Every URL of the page is
    registered when the truth is built, so a record's URL joins the picture of equal size key whatever the order."""

    def __init__(self):
        self.parent: dict[str, str] = {}
        self.by_key: dict[str, str] = {}

    def find(self, url: str) -> str:
        """The picture's root URL.  A URL seen for the first time joins the picture of its size key as a child, so
        looking up a record's URL (a size variant the page never named) never changes the root of a picture found
        before: the scores do not depend on the order in which records and truth URLs are looked up."""
        if url not in self.parent:
            self.parent[url] = url
            other = self.by_key.setdefault(size_key(url), url)
            if other != url:
                self.parent[url] = self._root(other)
        return self._root(url)

    def _union(self, a: str, b: str) -> None:
        ra, rb = self._root(a), self._root(b)
        if ra != rb:
            self.parent[rb] = ra

    def _root(self, url: str) -> str:
        self.parent.setdefault(url, url)
        while self.parent[url] != url:
            url = self.parent[url]
        return url

    def add_element(self, candidates: list[str]) -> None:
        """The URLs of one `<img>` are one picture (each is also joined to equal size keys seen before)."""
        for url in candidates:
            self.find(url)
        for url in candidates[1:]:
            self._union(self.find(candidates[0]), self.find(url))

    def same(self, a: str, b: str) -> bool:
        return self.find(a) == self.find(b)


# --- per-page truth ----------------------------------------------------------------------------------------

@dataclass
class CaptionPair:
    picture: str  # a URL of the picture
    text: str


@dataclass
class PageTruth:
    page: Page
    pictures: Pictures
    own_urls: set[str]  # normalised page URLs (page, canonical, og:url)
    lead: str | None = None
    content: list[str] | None = None  # one URL per picture of expected.html (readability set only)
    captions: list[CaptionPair] = field(default_factory=list)
    excluded: int = 0  # expected.html images that are not pictures (data:, SVG, < 50 px)


def page_truth(page: Page) -> PageTruth:
    doc = parse(page.body)
    base = _base(doc, page.url) if doc is not None else page.url
    pictures = Pictures()
    own = {norm_url(page.url)}
    truth = PageTruth(page, pictures, own)
    if doc is None:
        return truth
    elements = [(img, img_candidates(img, base)) for img in doc.iter("img")]
    expected_doc = parse(page.expected) if page.expected else None
    expected = [(img, img_candidates(img, page.url)) for img in expected_doc.iter("img")] \
        if expected_doc is not None else []
    both = elements + expected
    placeholders = _union_elements(pictures, [c for _, c in both], [any(a in img.attrib for a in _LAZY)
                                                                    for img, _ in both])
    for el in doc.iter("link", "meta"):
        if (el.tag == "link" and "canonical" in (el.get("rel") or "").lower()) or (
                el.tag == "meta" and (el.get("property") or el.get("name")) == "og:url"):
            url = resolve(el.get("href") or el.get("content"), base)
            if url:
                own.add(norm_url(url))
    truth.lead = declared_lead(doc, base, own)
    if truth.lead:
        pictures.find(truth.lead)  # registered before any record is looked up: joins are order-free
    if page.expected is not None:
        truth.content, truth.excluded = _content(pictures, expected)
    truth.captions = _caption_pairs(doc, base, own=own, elements=elements, placeholders=placeholders)
    return truth


def _base(doc, url: str) -> str:
    base = doc.find(".//base[@href]")
    return (resolve(base.get("href"), url) or url) if base is not None else url


def _union_elements(pictures: Pictures, groups: list[list[str]], lazy: list[bool]) -> set[str]:
    """Join the candidates of each `<img>`, except placeholders: a URL shared by `<img>`s that otherwise name
    different URLs, when three or more do, or when every one of them is lazy-loaded (the real URL in `data-*`)."""
    owners: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        for url in group:
            owners.setdefault(url, []).append(i)
    shared = set()
    for url, idx in owners.items():
        others = {frozenset(u for u in groups[i] if u != url) for i in idx} - {frozenset()}
        if len(others) >= 3 or (len(others) == 2 and all(lazy[i] for i in idx)):
            shared.add(url)
    for group in groups:
        kept = [u for u in group if u not in shared]
        if kept:
            pictures.add_element(kept)
    return shared


def _content(pictures: Pictures, expected) -> tuple[list[str], int]:
    seen: dict[str, str] = {}
    excluded = 0
    for img, candidates in expected:
        if not candidates or is_not_picture(candidates[0], img) or all(is_not_picture(c) for c in candidates):
            excluded += 1
            continue
        seen.setdefault(pictures.find(candidates[0]), candidates[0])
    return list(seen.values()), excluded


def declared_lead(doc, base: str, own: set[str]) -> str | None:
    """og:image, else twitter:image, else the JSON-LD article's image (an @id resolved in the page's JSON-LD)."""
    metas = {}
    for m in doc.iter("meta"):
        key = (m.get("property") or m.get("name") or "").strip().lower()
        if key and m.get("content") and key not in metas:
            metas[key] = m.get("content")
    for key in ("og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src"):
        url = resolve(metas.get(key), base)
        if url and _plausible(url, own):
            return url
    url = resolve(_ld_image(doc), base)
    return url if url and _plausible(url, own) else None


def _plausible(url: str, own: set[str]) -> bool:
    return norm_url(url) not in own and not is_non_image(url) and not is_not_picture(url)


def _ld_image(doc) -> str | None:
    objects: list[dict] = []
    for script in doc.iter("script"):
        if (script.get("type") or "").strip().lower() == "application/ld+json":
            try:
                _collect(json.loads(script.text or ""), objects)
            except (ValueError, RecursionError):
                continue
    by_id = {o["@id"]: o for o in objects if isinstance(o.get("@id"), str)}
    for obj in objects:
        types = obj.get("@type")
        types = {str(t).lower() for t in (types if isinstance(types, list) else [types])}
        if any(t.endswith("article") or t in ("blogposting", "report") for t in types):
            image = obj.get("image")
            image = image[0] if isinstance(image, list) and image else image
            for _ in range(3):
                if isinstance(image, dict) and set(image) <= {"@id"} and image.get("@id") in by_id:
                    image = by_id[image["@id"]]
                elif isinstance(image, dict):
                    image = image.get("url") or image.get("contentUrl")
                    image = image[0] if isinstance(image, list) and image else image
                if isinstance(image, str):
                    return image
    return None


def _collect(data, out: list[dict]) -> None:
    if isinstance(data, list):
        for item in data:
            _collect(item, out)
    elif isinstance(data, dict):
        out.append(data)
        _collect(data.get("@graph"), out)


def _caption_pairs(doc, base: str, *, own: set[str], elements, placeholders: set[str]) -> list[CaptionPair]:
    cands = {id(img): c for img, c in elements}
    pairs: dict[tuple[str, str], CaptionPair] = {}
    for figure in doc.iter("figure"):
        if any(a.tag in ("nav", "footer", "aside") for a in figure.iterancestors()):
            continue
        caps = [c for c in figure.iter("figcaption") if _figure_of(c) is figure]
        imgs = [img for img in figure.iter("img") if _figure_of(img) is figure and cands.get(id(img))
                and not is_not_picture(cands[id(img)][0], img)]
        if len(caps) != 1 or len(imgs) != 1:
            continue
        text = " ".join(_visible(caps[0]).split())
        if not text or _links_elsewhere(figure, base, own):
            continue
        url = next((u for u in cands[id(imgs[0])] if u not in placeholders), cands[id(imgs[0])][0])
        pairs.setdefault((size_key(url), text), CaptionPair(url, text))
    return list(pairs.values())


def _figure_of(el):
    return next((a for a in el.iterancestors() if a.tag == "figure"), None)


def _visible(el) -> str:
    """Text a reader sees: no scripts, no screen-reader-only labels ("Media caption")."""
    parts = [el.text or ""]
    for child in el:
        if isinstance(child.tag, str) and child.tag not in ("script", "style", "noscript", "template") \
                and not _HIDDEN.search(child.get("class") or ""):
            parts.append(" " + _visible(child) + " ")
        parts.append(child.tail or "")
    return "".join(parts)


def _links_elsewhere(figure, base: str, own: set[str]) -> bool:
    """A teaser: the figure, its image or its caption is a link to another HTML page (not to the image)."""
    outer = [a for a in list(figure.iterancestors())[:4] if a.tag == "a"]
    for a in [*outer, *figure.iter("a")]:
        href = resolve(a.get("href"), base)
        if href and norm_url(href) not in own and not _looks_like_media(href):
            return True
    return False


def _looks_like_media(url: str) -> bool:
    name = urlsplit(url).path.rsplit("/", 1)[-1].lower()
    return bool(re.search(r"\.(?:jpe?g|png|gif|webp|avif|tiff?|bmp)$", name)) or "/wp-content/uploads/" in url


def caption_recovered(text: str, candidates: list[str], credit: str | None) -> bool:
    """The figcaption is recovered by one of the record's figcaption candidates (see the module docstring); a
    figcaption that is only a credit ("Photograph: Jane Doe/Getty Images") by the record's credit."""
    want = _words(text) - _LABEL_WORDS
    if not want:
        return False
    credit_words = _words(credit or "")
    for cand in candidates:
        got = _words(cand)
        if got and got <= _words(text) and len((got | credit_words) & want) >= 0.8 * len(want):
            return True
    return len(want) <= _CREDIT_ONLY_WORDS and want <= credit_words


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"\w+", text.lower())}
