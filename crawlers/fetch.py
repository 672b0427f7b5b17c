"""Judging fetched responses: image sniffing, `X-Robots-Tag` parsing, error kinds, and RAW row construction."""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone

from scrapy.exceptions import IgnoreRequest
from twisted.internet.error import ConnectError, DNSLookupError, TCPTimedOutError, TimeoutError

from crawlers.extract.records import ImageRef
from data_schemas import CAPTION_PREFERENCE, row_id
from data_schemas import reasons as R

try:  # Scrapy >= 2.13 raises its own exception types from the download handler
    from scrapy.exceptions import DownloadCancelledError, DownloadTimeoutError
except ImportError:  # pragma: no cover - older Scrapy
    DownloadCancelledError = DownloadTimeoutError = ()  # type: ignore[assignment,misc]

OPT_OUT_DIRECTIVES = frozenset({"noai", "noimageai"})
_RANK = {origin: i for i, origin in enumerate(CAPTION_PREFERENCE)}
_UA_SCOPED = re.compile(r"^\s*([A-Za-z0-9_.*-]+)\s*:\s*(.*)$")
_VALUED = {"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"}
_OCTET = {"application/octet-stream", "binary/octet-stream", ""}


@dataclass(slots=True)
class PageCtx:
    """Page-level fields every row of one page shares."""

    url: str
    title: str | None = None
    lang: str | None = None
    published_at: datetime | None = None
    license: str | None = None
    opt_out: tuple[str, ...] = ()


@dataclass(slots=True)
class ImageResult:
    body: bytes | None
    mime: str | None
    status: int | None
    error: str | None  # one of reasons.FETCH_ERRORS
    opt_out: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return len(self.body) if self.body else 0


def sniff_image(body: bytes) -> str | None:
    """MIME type from magic bytes, for the raster formats a training pipeline can decode; None otherwise."""
    head = body[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis"):
            return "image/heic"
    if head[:2] == b"BM":
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    return None


def robots_directives(values: list[bytes] | None, *, agent: str = "mmpipe") -> frozenset[str]:
    """Directives of `X-Robots-Tag` header values that apply to us (unscoped, `*`, or our agent token)."""
    out: set[str] = set()
    for raw in values or []:
        text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
        m = _UA_SCOPED.match(text)
        if m and m.group(1).lower() not in _VALUED:
            if m.group(1).lower() not in (agent.lower(), "*"):
                continue
            text = m.group(2)
        out.update(d.strip().lower() for d in text.split(",") if d.strip())
    return frozenset(out)


def classify_image(status: int, headers, body: bytes, *, agent: str) -> tuple[str | None, ImageResult]:
    """(drop reason or None, result) of an image response; fetch errors still make a result (a RAW row)."""
    directives = robots_directives(headers.getlist(b"X-Robots-Tag"), agent=agent)
    if directives & OPT_OUT_DIRECTIVES:
        return R.OPT_OUT_IMAGE, ImageResult(None, None, status, None)
    if headers.get(b"tdm-reservation", b"").strip() == b"1":
        return R.OPT_OUT_TDMREP, ImageResult(None, None, status, None)
    opt_out = tuple(sorted(directives))
    if status >= 400:
        return None, ImageResult(None, None, status, "http_error", opt_out)
    ctype = (headers.get(b"Content-Type") or b"").decode("latin-1").split(";")[0].strip().lower()
    mime = sniff_image(body)
    if mime is None or not (ctype.startswith("image/") or ctype in _OCTET):
        return None, ImageResult(None, None, status, "not_image", opt_out)
    return None, ImageResult(body, mime, status, None, opt_out)


def error_kind(exc: BaseException) -> str:
    """Map a download exception to one of `reasons.FETCH_ERRORS`."""
    if DownloadCancelledError and isinstance(exc, DownloadCancelledError):
        return "too_large"
    if isinstance(exc, (TimeoutError, TCPTimedOutError)) or (DownloadTimeoutError
                                                             and isinstance(exc, DownloadTimeoutError)):
        return "timeout"
    if "maxsize" in str(exc) or "larger than download max size" in str(exc):
        return "too_large"
    if isinstance(exc, (ConnectError, DNSLookupError, IgnoreRequest)):
        return "connection_error"
    return "connection_error"


def sorted_candidates(ref: ImageRef) -> list[dict[str, str]]:
    """Candidates in CAPTION_PREFERENCE order (stable within an origin), as RAW list<struct> values."""
    ordered = sorted(ref.candidates, key=lambda c: _RANK.get(c[1], len(_RANK)))
    return [{"text": text, "origin": origin} for text, origin in ordered]


def make_row(*, source: str, kind: str, ctx: PageCtx, ref: ImageRef, result: ImageResult) -> dict:
    return {
        "id": row_id(ctx.url, ref.url), "source": source, "source_kind": kind,
        "page_url": ctx.url, "image_url": ref.url, "caption_candidates": sorted_candidates(ref),
        "title": ctx.title, "page_lang": ctx.lang, "published_at": ctx.published_at,
        "crawled_at": datetime.now(timezone.utc), "license": ctx.license, "credit": ref.credit,
        "image_bytes": result.body, "image_mime": result.mime, "http_status": result.status,
        "fetch_error": result.error, "opt_out": sorted(set(ctx.opt_out) | set(result.opt_out)),
    }


class ImageCache:
    """Recently fetched images, bounded by bytes, so an image shared by several pages is downloaded once."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.items: OrderedDict[str, ImageResult] = OrderedDict()
        self.bytes = 0

    def get(self, url: str) -> ImageResult | None:
        item = self.items.get(url)
        if item is not None:
            self.items.move_to_end(url)
        return item

    def put(self, url: str, result: ImageResult) -> None:
        if url in self.items:
            return
        self.items[url] = result
        self.bytes += result.size
        while self.bytes > self.max_bytes and len(self.items) > 1:
            _, old = self.items.popitem(last=False)
            self.bytes -= old.size
