"""Fetching and judging responses: image sniffing, `X-Robots-Tag`, TDMRep and `Retry-After` parsing, error kinds,
RAW row construction, and address resolution for the safety check."""

from __future__ import annotations

import email.utils
import ipaddress
import json
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone

from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectError, DNSLookupError, TCPTimedOutError, TimeoutError
from twisted.internet.interfaces import IResolutionReceiver
from zope.interface import implementer

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
    # URL lists: `url` is the pair's accounting key in the crawl state; the row's page_url is this (the list's
    # page column, or "" when the list names none), and `provenance` the list row's other columns as JSON
    row_page_url: str | None = None
    provenance: str | None = None


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
    text = str(exc).lower()  # Scrapy's wording differs by place: "max size", "DOWNLOAD_MAXSIZE", "maxsize"
    if "maxsize" in text or "max size" in text:  # cut while downloading, or while decompressing (gzip bombs)
        return "too_large"
    if "max redirections" in text:  # RedirectMiddleware: REDIRECT_MAX_TIMES hops, e.g. a redirect loop
        return "too_many_redirects"
    if isinstance(exc, (ConnectError, DNSLookupError, IgnoreRequest)):
        return "connection_error"
    return "connection_error"


def parse_tdmrep(body: bytes) -> list[tuple[re.Pattern, bool]]:
    """[(path pattern, reserved)] in file order; `location` uses robots.txt-style `*` and `$`."""
    try:
        data = json.loads(body)
    except ValueError:
        return []
    rules = []
    for rule in data if isinstance(data, list) else []:
        if not isinstance(rule, dict) or not isinstance(rule.get("location"), str):
            continue
        loc = rule["location"].strip()
        loc = re.sub(r"^https?://[^/]+", "", loc) or "/"
        regex = re.escape(loc).replace(r"\*", ".*")
        regex = regex[:-2] + "$" if regex.endswith(r"\$") else regex
        rules.append((re.compile(regex), str(rule.get("tdm-reservation", "0")).strip() in ("1", "true", "True")))
    return rules


def retry_after_seconds(value: bytes | str | None) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def sorted_candidates(ref: ImageRef) -> list[dict[str, str]]:
    """Candidates in CAPTION_PREFERENCE order (stable within an origin), as RAW list<struct> values."""
    ordered = sorted(ref.candidates, key=lambda c: _RANK.get(c[1], len(_RANK)))
    return [{"text": text, "origin": origin} for text, origin in ordered]


def make_row(*, source: str, kind: str, ctx: PageCtx, ref: ImageRef, result: ImageResult) -> dict:
    """A teaser (`ref.link`) is a row of the page it links to, titled with its own headline."""
    page_url = ref.link or (ctx.url if ctx.row_page_url is None else ctx.row_page_url)
    title = next((t for t, o in ref.candidates if o == "title"), None) if ref.link else ctx.title
    return {
        "id": row_id(page_url, ref.url), "source": source, "source_kind": kind, "role": ref.role,
        "page_url": page_url, "image_url": ref.url, "caption_candidates": sorted_candidates(ref),
        "title": title, "page_lang": ctx.lang, "published_at": None if ref.link else ctx.published_at,
        "crawled_at": datetime.now(timezone.utc), "license": ctx.license, "credit": ref.credit,
        "image_bytes": result.body, "image_mime": result.mime, "http_status": result.status,
        "fetch_error": result.error, "opt_out": sorted(set(ctx.opt_out) | set(result.opt_out)),
        "provenance": ctx.provenance,
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


def is_public_ip(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.is_global and not addr.is_multicast


@implementer(IResolutionReceiver)
class _Addresses:
    """Collects every address a Twisted name resolver reports for one name."""

    def __init__(self):
        self.found: list[str] = []
        self.done: Deferred = Deferred()

    def resolutionBegan(self, resolution) -> None:  # noqa: N802 - Twisted interface
        return None

    def addressResolved(self, address) -> None:  # noqa: N802
        self.found.append(address.host)

    def resolutionComplete(self) -> None:  # noqa: N802
        self.done.callback(self.found)


async def resolve_all(host: str) -> list[str]:
    """Every A and AAAA address of `host` from the reactor's name resolver, the one Scrapy connects with
    (TWISTED_DNS_RESOLVER, cached per name); [] when the name does not resolve."""
    from twisted.internet import reactor  # imported late: importing it installs a reactor

    receiver = _Addresses()
    reactor.nameResolver.resolveHostName(receiver, host, 0)
    return await maybe_deferred_to_future(receiver.done)
