"""One picture, one record: the URLs of one picture at other sizes or crops, and which of them to keep.

A page names the same picture many times: srcset candidates, the og:image, a JSON-LD list of crops (1x1, 4x3,
16x9), a CDN resize URL (`?w=2480`, `/max/800/`, `-768x512.jpg`).  `PictureSet` merges the records of one picture
into one, with every caption candidate, and keeps its best URL: the largest declared width, else the original
file a size variant was cut from.  Two pictures merge only on markup evidence (candidates of one `<img>`) or on
equal keys: the same path once size tokens are removed, or the same distinctive file name.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote, urlsplit

from crawlers.extract.records import ImageRef

_SIZE_TOKEN = re.compile(r"(?:[-_@](?:\d{2,5}x\d{2,5}|\d{2,5}w|[1-4]x|scaled|e\d{10,})(?=[-_.@]|$))+",
                         re.IGNORECASE)
_PX_PREFIX = re.compile(r"^\d{2,5}px-")
_SIZE_SEGMENT = re.compile(r"^(?:\d{1,5}|\d{1,5}x\d{1,5}|\d+_\d+_\d+_\d+|max|fit-in|resize|crop|filters:.*|"
                           r"s\d{2,4}(?:-c)?|w\d{2,4}-h\d{2,4}[-\w]*|"  # Blogger: /s320/, /w1200-h630-p-k-no-nu/
                           r"[a-z]{1,2}_\d[^/]*|(?:[a-z]{1,2}_[^/,]*,)+[^/]*|\d+x\d+:\d+x\d+)$", re.IGNORECASE)
_SIZE_PARAMS = frozenset(("w", "h", "width", "height", "quality", "q", "fit", "crop", "resize", "auto", "fm",
                          "format", "dpr", "strip", "ssl", "itok", "impolicy", "imwidth", "sz"))
_ID_SEGMENT = re.compile(r"\d{5,}|[0-9a-f]{16,}", re.IGNORECASE)  # a folder named by a picture id: part of the name
MIN_NAME_CHARS = 8  # letters and digits: a file name this long names one picture wherever it is stored
_SCRIPT_EXT = frozenset(("php", "asp", "aspx", "ashx", "jsp", "cgi", "py", "pl"))
_GENERIC = frozenset(("image", "images", "photo", "picture", "original", "large", "medium", "small", "thumb",
                      "thumbnail", "default", "index", "cover", "preview", "master", "source", "hero", "header",
                      "lead", "main", "file", "img", "full", "standard", "desktop", "mobile", "share", "social"))
_WIDTH = (re.compile(r"(?:^|[^\d])(\d{2,5})x\d{2,5}(?:[^\d]|$)"),  # -1600x1067.jpg, /70x70/
          re.compile(r"[?&](?:w|width|imwidth|thumbnail)=(\d{2,5})"),  # ?w=2480, ?thumbnail=130,87
          # /max/800/, w_137/, /news/976/; not a run of numeric folders, which is an id path (/hv1/168/240/2140/)
          re.compile(r"(?:/max/|[/,]w_)(\d{2,4})/|/[^/\d][^/]*/(?!19\d\d/|20\d\d/)(\d{3,4})/(?!\d+/)"),
          re.compile(r"[-_](\d{3,5})w(?:[-_.]|$)"))  # -800w.jpg


@lru_cache(maxsize=8192)
def keys(url: str) -> tuple[str, str | None]:
    """(path key, file-name key or None): equal keys are the same picture.  The file-name key is a distinctive
    name with its size tokens cut (`web15-blog-ff-2400x960_0.jpg` under two Drupal image styles, an og:image crop
    in another folder); generic or short names (`image.jpg`, `4800.jpg`) have none."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, None
    inner = _embedded(parts.query) or _embedded_in_path(parts.path)
    if inner:
        return keys(inner)  # a resizing proxy: the picture is the one it was handed (?url=, ?image_uri=)
    segments = [s for s in parts.path.split("/") if s]
    for i in range(len(segments) - 2):  # Drupal image styles: /styles/<style>/public/<file>
        if segments[i] == "styles" and segments[i + 2] in ("public", "private"):
            segments[i + 1] = "1"
    name = segments.pop() if segments else ""
    stem, dot, ext = name.rpartition(".")
    stem = _PX_PREFIX.sub("", _SIZE_TOKEN.sub("", stem if dot else name)).lower()
    if re.fullmatch(r"\d{1,5}", stem):  # a file named by its size: /master/4800.jpg
        stem = ""
    host = ".".join((parts.hostname or "").split(".")[-2:])
    dirs = "/".join(s for s in segments if not _SIZE_SEGMENT.match(s))
    if dot and ext.lower() not in _SCRIPT_EXT:  # a file's query resizes it; a script's query names the picture
        query = ""
    else:
        query = "&".join(sorted(p for p in parts.query.split("&") if p.split("=", 1)[0].lower() not in _SIZE_PARAMS))
    distinctive = len(re.sub(r"[\W_]", "", stem)) >= MIN_NAME_CHARS and re.search(r"[a-z]", stem) \
        and stem not in _GENERIC
    ids = [s for s in segments if _ID_SEGMENT.fullmatch(s)]  # /photos/.../18636689/15/gallery_medium.jpg
    name = f"name:{ids[-1] if ids else ''}/{stem}" if distinctive else None
    return f"{host}/{dirs}/{stem}?{query}", name


def _embedded(query: str) -> str | None:
    if "http" not in query:
        return None
    for key, _, value in (p.partition("=") for p in query.split("&")):
        if key.lower() in ("url", "src", "image", "img", "image_uri", "u"):
            value = unquote(value)
            if value.startswith(("http://", "https://")):
                return value
    return None


def _embedded_in_path(path: str) -> str | None:
    """The original a path-style resizing proxy was handed: Thumbor's `/thumbor/1280x868/https%3A%2F%2F...`,
    `/fit-in/600x0/https://...`."""
    start = path.find("http", 1)
    if start < 0 or path[start - 1] != "/":
        return None
    inner = unquote(path[start:])
    for scheme in ("https:/", "http:/"):
        if inner.startswith(scheme):
            rest = inner[len(scheme):].lstrip("/")
            return f"{scheme}/{rest}" if "/" in rest else None
    return None


@lru_cache(maxsize=8192)
def url_width(url: str) -> int | None:
    """A width the URL itself states (`-1600x1067.jpg`, `?w=2480`, `/max/800/`, `-800w.jpg`), else None."""
    for pattern in _WIDTH:
        m = pattern.search(url)
        if m:
            return int(next(g for g in m.groups() if g))
    return None


class PictureSet:
    """The records of one page, merged picture by picture, in the order they were first seen."""

    def __init__(self):
        self.refs: list[ImageRef] = []
        self._by_key: dict[str, ImageRef] = {}

    def find(self, urls: list[str], *, by_name: bool = False) -> ImageRef | None:
        for url in urls:  # the same URL again: no key to compute
            ref = self._by_key.get(url)
            if ref is not None:
                return ref
        for url in urls:
            path_key, name_key = keys(url)
            ref = self._by_key.get(path_key) or (
                self._by_key.get(name_key) if by_name and name_key else None)
            if ref is not None:
                return ref
        return None

    def add(self, urls: list[str], *, width: float = 0.0, by_name: bool = False) -> ImageRef:
        """The record of the picture these URLs show (best first), created or merged into."""
        ref = self.find(urls, by_name=by_name)
        if ref is None:
            ref = ImageRef(urls[0], width=width)
            self.refs.append(ref)
        elif _better(urls[0], width, ref):
            ref.url, ref.width = urls[0], width
        for url in urls:
            path_key, name_key = keys(url)
            for key in (url, path_key, name_key):
                if key:
                    self._by_key.setdefault(key, ref)
        return ref


def _better(url: str, width: float, ref: ImageRef) -> bool:
    """Whether `url` is a better address for the picture than the record's: a larger declared or stated width;
    or the original a stated-size variant was cut from (`photo.jpg` over `photo-768x512.jpg`)."""
    new = width or url_width(url)
    old = ref.width or url_width(ref.url)
    if new and old:
        return new > old
    cut = bool(_SIZE_TOKEN.search(ref.url.rsplit("/", 1)[-1]))
    return bool(old and not new and cut and keys(url)[0] == keys(ref.url)[0])
