"""DemoSite: the pure request -> response function of the demo site, plus its ground truth.

``response(path)`` returns exactly what the server sends for a GET, minus the stateful behaviour (the first-request
500 / 429 answers and the slow sleeps, which ``server.py`` adds and ``stateful`` describes).
"""

from __future__ import annotations

import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from urllib.parse import parse_qsl, urlsplit

from crawlers.demo import feeds, html_pages, images, social_api
from crawlers.demo.model import EXT, MIME
from crawlers.demo.plan import build_plan
from crawlers.demo.plan_base import SRCSET_WIDTHS
from crawlers.demo.truth import PairTruth, count
from crawlers.demo.truth_build import build_truth


@dataclass(frozen=True)
class DemoSiteConfig:
    """The demo site's knobs (`mmpipe demo-site`, generate_site, DemoSite): each default lives here alone."""

    articles: int = 60  # news articles; social posts scale with it
    seed: int = 0  # the same seed and size always give the same site
    photo_size: str = "mixed"  # mixed | bench (800-1024 px, ~120 KB JPEG) | small
    trouble: float = 1.0  # scale of every planted trouble amount (0 = none)
    host: str = "127.0.0.1"  # `mmpipe demo-site` binds loopback unless told otherwise
    port: int = 8800  # `mmpipe demo-site`'s port (0 picks a free one)


DEFAULT_BASE = f"http://{DemoSiteConfig.host}:{DemoSiteConfig.port}"
HTML = "text/html; charset=utf-8"
_IMG = re.compile(r"^(?P<stem>/img/\d{4}/\d{2}/(?P<pid>\d{6,})-[a-z0-9-]*?)(?:-(?P<w>\d+)w)?\.(?P<ext>jpg|png|webp)$")
_FMT = {v: k for k, v in EXT.items()}
LAST_MODIFIED = format_datetime(datetime(2024, 5, 20, 12, 0, tzinfo=timezone.utc), usegmt=True)
Response = tuple[int, dict[str, str], bytes]


class _LRU:
    """Rendered image bodies, bounded by total bytes: a 50,000-article site never holds all its images."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.size = max_bytes, 0
        self.items: OrderedDict[tuple, bytes] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple) -> bytes | None:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def put(self, key: tuple, value: bytes) -> None:
        with self.lock:
            if key not in self.items:
                self.items[key] = value
                self.size += len(value)
            while self.size > self.max_bytes and len(self.items) > 1:
                _, old = self.items.popitem(last=False)
                self.size -= len(old)


class DemoSite:
    def __init__(self, articles: int = DemoSiteConfig.articles, seed: int = DemoSiteConfig.seed, *,
                 photo_size: str = DemoSiteConfig.photo_size, trouble: float = DemoSiteConfig.trouble,
                 base_url: str = DEFAULT_BASE, cache_mb: int = 256):
        self.articles, self.seed, self.photo_size, self.trouble = articles, seed, photo_size, trouble
        self.plan = build_plan(articles, seed, photo_size=photo_size, trouble=trouble)
        self.base_url = base_url.rstrip("/")
        self._cache = _LRU(cache_mb << 20)
        for key, body in self.plan.prerendered.items():
            self._cache.put(key, body)
        self.plan.prerendered.clear()
        self._truth: list[PairTruth] | None = None
        self._article_by_path = {a.path: a for a in self.plan.articles}
        self._status_by_path = {s.path: s for s in self.plan.statuses}
        self._post_by_path = {p.path: p for p in self.plan.posts}

    # --- ground truth ------------------------------------------------------------------------------------------
    @property
    def truth(self) -> list[PairTruth]:
        """Every (page, image) pair, URLs as paths; ``absolute_truth(base)`` gives full URLs."""
        if self._truth is None:
            self._truth = build_truth(self.plan)
        return self._truth

    def absolute_truth(self, base_url: str | None = None) -> list[PairTruth]:
        base = (base_url or self.base_url).rstrip("/")
        return [t.absolute(base) for t in self.truth]

    def expected_crawl_drops(self) -> Counter:
        return count(self.truth, "crawl")

    def expected_clean_drops(self) -> Counter:
        return count(self.truth, "clean")

    def expected_kept(self) -> int:
        return sum(1 for t in self.truth if t.stage is None)

    def expected_raw_rows(self) -> int:
        """Rows a correct crawl writes: every pair not dropped at the crawl stage."""
        return sum(1 for t in self.truth if t.stage != "crawl")

    @property
    def mastodon_tags(self) -> tuple[str, ...]:
        """Every status carries exactly one of these tags: crawling their timelines reaches every Mastodon pair."""
        return self.plan.tags

    @property
    def bluesky_actors(self) -> tuple[str, ...]:
        """Handles of every Bluesky author: their author feeds reach every Bluesky pair."""
        return tuple(a.handle for a in self.plan.authors)

    # --- the special URLs --------------------------------------------------------------------------------------
    def stateful(self) -> dict[str, str]:
        """path -> behaviour the server adds: "500_once" | "429_once" | "slow" (sleep 1.5 s before answering)."""
        out: dict[str, str] = {}
        for a in self.plan.articles:
            if a.trouble == "http_429_once":
                out[a.path] = "429_once"
            elif a.trouble == "slow":
                out[a.path] = "slow"
            for s in a.slots:
                serve = self.plan.pictures[s.pid].serve
                if serve == "http_500_once":
                    out[s.url] = "500_once"
                elif serve == "slow":
                    out[s.url] = "slow"
        return out

    def page_paths(self) -> list[str]:
        return [a.path for a in self.plan.articles]

    # --- responses ---------------------------------------------------------------------------------------------
    def response(self, path_with_query: str, *, base_url: str | None = None) -> Response:
        base = (base_url or self.base_url).rstrip("/")
        parts = urlsplit(path_with_query)
        path, params = parts.path or "/", dict(parse_qsl(parts.query))
        if path.startswith("/img/"):
            return self._image(path)
        if path.startswith("/api/v1/"):
            return self._mastodon(path, params, base)
        if path.startswith("/xrpc/"):
            return social_api.bluesky(self.plan, base, path[len("/xrpc/"):], params)
        return self._page(path, params, base)

    def _page(self, path: str, params: dict[str, str], base: str) -> Response:
        plan = self.plan
        if path in self._article_by_path:
            article = self._article_by_path[path]
            headers = {"Content-Type": HTML, "Last-Modified": format_datetime(article.published, usegmt=True)}
            if article.trouble == "noai_header":
                headers["X-Robots-Tag"] = "noai, noimageai"
            if article.trouble == "tdm_header":  # the reserved section is covered by tdmrep.json only
                headers["tdm-reservation"] = "1"
                headers["tdm-policy"] = base + feeds.TDM_POLICY
            return 200, headers, html_pages.article_page(article, plan, base).encode()
        if path == "/":
            return _ok(html_pages.home(plan), HTML)
        if path.startswith("/section/") and path.endswith("/"):
            page_arg = params.get("page", "1")
            page = int(page_arg) if page_arg.isdigit() else 0
            text = html_pages.section(plan, path[len("/section/"):-1], page)
            return _ok(text, HTML) if text else _not_found()
        static = {"/robots.txt": (lambda: feeds.robots_txt(base), "text/plain; charset=utf-8"),
                  "/feeds/rss.xml": (lambda: feeds.rss(plan, base), "application/rss+xml; charset=utf-8"),
                  "/feeds/atom.xml": (lambda: feeds.atom(plan, base), "application/atom+xml; charset=utf-8"),
                  "/sitemap.xml": (lambda: feeds.sitemap_index(plan, base), "application/xml; charset=utf-8"),
                  "/.well-known/tdmrep.json": (lambda: feeds.tdmrep(base), "application/json"),
                  feeds.TDM_POLICY: (feeds.tdm_policy, "application/json")}
        if path in static:
            make, ctype = static[path]
            return _ok(make(), ctype)
        if path.startswith("/sitemaps/"):
            text = feeds.news_sitemap(plan, base, path)
            return _ok(text, "application/xml; charset=utf-8") if text else _not_found()
        return self._misc(path)

    def _misc(self, path: str) -> Response:
        if path in self._status_by_path:
            s = self._status_by_path[path]
            return _ok(html_pages.social_page(f"{s.account.display_name} on Demo Social", s.text), HTML)
        if path in self._post_by_path:
            p = self._post_by_path[path]
            return _ok(html_pages.social_page(f"{p.author.display_name} on Bluesky", p.text), HTML)
        return _static_asset(path)

    def _mastodon(self, path: str, params: dict[str, str], base: str) -> Response:
        if path == "/api/v1/timelines/public" or re.fullmatch(r"/api/v1/timelines/tag/[^/]+", path):
            return social_api.mastodon_timeline(self.plan, base, path, params)
        return 404, {"Content-Type": social_api.JSON}, b'{"error":"Record not found"}'

    def resolve_image(self, path: str) -> tuple[int, int | None, str] | None:
        """(pid, width or None for the native size, format) for an image URL, or None when it is not one."""
        alias = self.plan.aliases.get(path)
        if alias is not None:
            return alias
        m = _IMG.match(path)
        if not m:
            return None
        pid = int(m["pid"])
        if pid >= len(self.plan.pictures) or self.plan.stems.get(pid) != m["stem"]:
            return None
        pic, fmt = self.plan.pictures[pid], _FMT[m["ext"]]
        if m["w"] is None:
            return (pid, None, fmt) if fmt == pic.fmt else None
        width = int(m["w"])
        if width in SRCSET_WIDTHS and width < pic.width and fmt in ("jpeg", "webp"):
            return pid, width, fmt
        return None

    def image_bytes(self, pid: int, width: int | None, fmt: str) -> bytes:
        key = (pid, width, fmt)
        data = self._cache.get(key)
        if data is None:
            data = images.picture_bytes(self.plan.pictures, pid, width, fmt)
            self._cache.put(key, data)
        return data

    def _image(self, path: str) -> Response:
        resolved = self.resolve_image(path)
        if resolved is None:
            return _not_found()
        pid, width, fmt = resolved
        pic = self.plan.pictures[pid]
        native = width is None
        if native and pic.serve == "http_404":
            return _not_found()
        headers = {"Content-Type": MIME[fmt], "Last-Modified": LAST_MODIFIED, "Cache-Control": "max-age=86400"}
        if native and pic.serve == "bomb":
            headers["Content-Type"] = "image/png"
        if native and pic.serve == "noimageai":
            headers["X-Robots-Tag"] = "noimageai"
        return 200, headers, self.image_bytes(pid, width, fmt)


def _ok(text: str, ctype: str) -> Response:
    return 200, {"Content-Type": ctype}, text.encode()


def _not_found() -> Response:
    body = b"<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>\n"
    return 404, {"Content-Type": HTML}, body


def _static_asset(path: str) -> Response:
    """Non-content images (logo, icons, avatars, ads, tracking pixel) and the odd resource a page links to."""
    if path == "/static/logo.png":
        return 200, {"Content-Type": "image/png"}, images.flat_image(180, 40, (20, 40, 90), "png")
    if path.startswith("/static/icons/") and path.endswith(".svg"):
        return 200, {"Content-Type": "image/svg+xml"}, images.SHARE_ICON_SVG
    if re.fullmatch(r"/static/avatars/[a-z]+\.jpg", path):
        return 200, {"Content-Type": "image/jpeg"}, images.flat_image(48, 48, (180, 150, 120), "jpeg")
    if path == "/ads/banner-728x90.jpg":
        return 200, {"Content-Type": "image/jpeg"}, images.flat_image(728, 90, (250, 200, 0), "jpeg")
    if path == "/px/track.gif":
        return 200, {"Content-Type": "image/gif", "Cache-Control": "no-store"}, images.tracking_pixel_gif()
    if re.fullmatch(r"/media/\d+/original\.mp4", path):
        return 200, {"Content-Type": "video/mp4"}, b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    if re.fullmatch(r"/media/\d+/small\.png", path):
        return 200, {"Content-Type": "image/png"}, images.flat_image(64, 36, (0, 0, 0), "png")
    return _not_found()


def generate_site(articles: int = DemoSiteConfig.articles, seed: int = DemoSiteConfig.seed, *,
                  photo_size: str = DemoSiteConfig.photo_size, trouble: float = DemoSiteConfig.trouble,
                  base_url: str = DEFAULT_BASE) -> DemoSite:
    """Deterministic: the same arguments give the same bytes for every URL (for a given base_url)."""
    return DemoSite(articles, seed, photo_size=photo_size, trouble=trouble, base_url=base_url)
