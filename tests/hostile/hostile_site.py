"""A hostile web site on loopback: the inputs of the issue-16 sweep, each on a path (or a host) of its own.

Each "host" is its own port on 127.0.0.1 (robots.txt, backoff and politeness are per host), plus one server on
127.0.0.2, outside the crawl's `private_networks`, which must never be connected to.  `HostileSite.build(site)`
plants every input and returns nothing; the case tables below say what each one is and what a crawl (and a clean of
its RAW output) must make of it, so the tests and this file cannot drift apart.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.pipeline.clean_rawdata import bomb_png, jpeg, photo

MB = 1 << 20
# The limits of the hostile crawl's config (small, so every cut comes fast; never product defaults).
MAX_IMAGE_BYTES = 1 * MB
MAX_PAGE_BYTES = 8 * MB
DOWNLOAD_TIMEOUT = 1.5

Handler = Callable[[BaseHTTPRequestHandler, int], None]  # (request handler, n-th hit of this path) -> writes


@dataclass(frozen=True)
class ImageCase:
    path: str
    what: str
    fetch_error: str | None  # the RAW row's fetch_error; None: the bytes are stored as received
    clean: str | None  # the clean stage's drop reason for the row; None: kept


# One article on the main host shows every hostile image; `None` clean = the row survives the clean stage.
IMAGE_CASES = [
    ImageCase("/img/bomb.png", "20 KB PNG declaring 13000x13000 pixels", None, "image_decompression_bomb"),
    ImageCase("/img/truncated.jpg", "a JPEG cut in half", None, "image_undecodable"),
    ImageCase("/img/html.jpg", "an HTML page served as the image", "not_image", "fetch_failed"),
    ImageCase("/img/vector.jpg", "an SVG document behind a .jpg URL", "not_image", "fetch_failed"),
    ImageCase("/img/empty.jpg", "0 bytes, image/jpeg", "not_image", "fetch_failed"),
    ImageCase("/img/huge-cl.jpg", "60 MB with Content-Length", "too_large", "fetch_failed"),
    ImageCase("/img/huge-chunked.jpg", "60 MB chunked, no Content-Length", "too_large", "fetch_failed"),
    ImageCase("/img/gzip-bomb.jpg", "20 KB gzip that inflates to 20 MB", "too_large", "fetch_failed"),
    ImageCase("/img/drip.jpg", "one byte every 0.3 s", "timeout", "fetch_failed"),
    ImageCase("/img/silent.jpg", "accepts the connection, never answers", "timeout", "fetch_failed"),
    ImageCase("/img/redirect-loop.jpg", "redirects to itself", "too_many_redirects", "fetch_failed"),
    ImageCase("/img/burst-429.jpg", "429 + Retry-After: 1 twice, then the photo", None, None),
    ImageCase("/img/odd-retry.jpg", "503 with Retry-After 'soon', then a past date, then the photo", None, None),
]
# Refused before any byte is fetched: no RAW row, an error of this kind in the crawl summary.
REFUSED_IMAGE = "/img/redirect-other.jpg"  # redirects to 127.0.0.2 (outside private_networks)
SVG_IMAGE = "/img/drawing.svg"  # a .svg URL: the page object never makes vector graphics candidates (no request)


@dataclass(frozen=True)
class PageCase:
    path: str
    what: str
    error: str | None  # the crawl summary's error kind; None: the page is read


PAGE_CASES = [
    PageCase("/p/big.html", "a 50 MB page", "page_too_large"),
    PageCase("/p/gzip-bomb.html", "a page that inflates to 20 MB", "page_too_large"),
    PageCase("/p/drip.html", "one byte every 0.3 s", "page_timeout"),
    PageCase("/p/silent.html", "never answers", "page_timeout"),
    PageCase("/p/loop.html", "redirects to loop-b.html, which redirects back", "page_redirect_loop"),
    PageCase("/p/redirect-other.html", "redirects to 127.0.0.2", "private_address"),
    PageCase("/p/deep.html", "100,000 nested <div>s around its figure", None),
    PageCase("/p/bad-utf8.html", "invalid UTF-8 in a page declared utf-8", None),
    PageCase("/p/busy.html", "503 twice (no Retry-After), then the page", None),
]
# robots.txt hosts: what the file does, and whether the host's pages are crawled.
ROBOTS_HOSTS = {
    "r500": ("answers 500", "robots_unreachable"),
    "rslow": ("never answers (times out)", "robots_unreachable"),
    "rbig": ("5 MB: 'Disallow: /private/' first, 'Disallow: /late/' after 500 KiB", None),
    "r404": ("answers 404 (no rules: allow all)", None),
}
STALE_LIMIT, API_PAGE_LIMIT, SITEMAP_DEPTH, DISCOVERY_LIMIT, FEED_PAGES = 2, 6, 2, 6, 3
FEED_ITEMS = 100_000


class HostileSite:
    def __init__(self):
        self.routes: dict[tuple[str, str], Handler] = {}
        self.hits: Counter[tuple[str, str]] = Counter()
        self.closing = threading.Event()
        self.servers: dict[str, ThreadingHTTPServer] = {}
        self.base: dict[str, str] = {}
        self.lock = threading.Lock()

    def start(self, *hosts: str) -> None:
        for host in hosts:
            self._serve(host, "127.0.0.1")
        self._serve("other", "127.0.0.2")

    def _serve(self, host: str, address: str) -> None:
        site = self

        class Handle(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                return

            def do_GET(self):  # noqa: N802
                path = self.path.split("?", 1)[0]
                with site.lock:
                    site.hits[(host, path)] += 1
                    n = site.hits[(host, path)]
                route = site.routes.get((host, path)) or site.routes.get((host, "*"))
                try:
                    if route is None:
                        send(self, 404, b"not here", "text/plain")
                    else:
                        route(self, n)
                except (BrokenPipeError, ConnectionResetError):  # the crawler gave up on us: as intended
                    self.close_connection = True

        server = ThreadingHTTPServer((address, 0), Handle)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers[host] = server
        self.base[host] = f"http://{address}:{server.server_address[1]}"

    def stop(self) -> None:
        self.closing.set()
        for server in self.servers.values():
            server.shutdown()
            server.server_close()

    def add(self, host: str, path: str, handler: Handler) -> None:
        self.routes[(host, path)] = handler

    def count(self, host: str, prefix: str = "") -> int:
        return sum(n for (h, p), n in self.hits.items() if h == host and p.startswith(prefix))


# --- response writers ------------------------------------------------------------------------------------------
def send(h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str, **headers: str) -> None:
    h.send_response(status)
    h.send_header("Content-Type", ctype)
    for k, v in headers.items():
        h.send_header(k.replace("_", "-"), v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def fixed(status: int, body: bytes | str, ctype: str = "text/html; charset=utf-8", **headers: str) -> Handler:
    data = body.encode() if isinstance(body, str) else body
    return lambda h, n: send(h, status, data, ctype, **headers)


def stream(total: int, ctype: str, *, content_length: bool) -> Handler:
    """`total` bytes in 64 KB chunks (with or without Content-Length), until the client hangs up."""
    def handler(h, n):
        h.send_response(200)
        h.send_header("Content-Type", ctype)
        if content_length:
            h.send_header("Content-Length", str(total))
        else:
            h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        chunk = b"\xff\xd8\xff" + b"\0" * (65536 - 3) if ctype.startswith("image/") else b"<p>" + b"x" * 65533
        for _ in range(total // len(chunk)):
            h.wfile.write(chunk if content_length else b"%x\r\n%s\r\n" % (len(chunk), chunk))
        if not content_length:
            h.wfile.write(b"0\r\n\r\n")
    return handler


def drip(site: HostileSite, ctype: str) -> Handler:
    def handler(h, n):
        h.send_response(200)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", "100000")
        h.end_headers()
        for _ in range(100_000):
            if site.closing.wait(0.3):
                return
            h.wfile.write(b"x")
            h.wfile.flush()
    return handler


def silent(site: HostileSite) -> Handler:
    def handler(h, n):
        site.closing.wait(60)
        h.close_connection = True
    return handler


def redirect(location: str) -> Handler:
    return lambda h, n: send(h, 302, b"", "text/plain", Location=location)


def gzipped(total: int, ctype: str) -> Handler:
    body = _gzip_zeros(total)
    return lambda h, n: send(h, 200, body, ctype, Content_Encoding="gzip")


def sequence(*steps: Handler) -> Handler:
    """The n-th hit gets the n-th step (the last one repeats)."""
    return lambda h, n: steps[min(n, len(steps)) - 1](h, n)


@lru_cache(maxsize=4)
def _gzip_zeros(total: int) -> bytes:
    return gzip.compress(b"\0" * total, compresslevel=9, mtime=0)


def picture(seed: int) -> bytes:
    return jpeg(photo(seed, (480, 360)))


def article(title: str, images: list[tuple[str, str]], *, before: str = "", after: str = "") -> str:
    figures = "".join(f"<figure><img src='{src}' alt='{alt}'><figcaption>{alt} near the old harbour."
                      f"</figcaption></figure>" for src, alt in images)
    return (f"<html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
            f"<meta property='og:type' content='article'></head><body>{before}<article><h1>{title}</h1>{figures}"
            f"<p>Some text.</p></article>{after}</body></html>")


# --- the site ------------------------------------------------------------------------------------------------
def build(site: HostileSite) -> None:
    """Plant every hostile input (hosts must be started: main, b, api, and the robots hosts)."""
    _images(site)
    _pages(site)
    _robots_hosts(site)
    _discovery(site)
    _api(site)


def _images(site: HostileSite) -> None:
    ok = picture(1)
    add = site.add
    add("main", "/img/bomb.png", fixed(200, bomb_png(13000), "image/png"))
    add("main", "/img/truncated.jpg", fixed(200, picture(2)[:6000], "image/jpeg"))
    add("main", "/img/html.jpg", fixed(200, "<html><body>not a picture</body></html>", "text/html"))
    svg = "<svg xmlns='http://www.w3.org/2000/svg' width='900' height='600'><rect width='900' height='600'/></svg>"
    add("main", SVG_IMAGE, fixed(200, svg, "image/svg+xml"))
    add("main", "/img/vector.jpg", fixed(200, svg, "image/svg+xml"))
    add("main", "/img/empty.jpg", fixed(200, b"", "image/jpeg"))
    add("main", "/img/huge-cl.jpg", stream(60 * MB, "image/jpeg", content_length=True))
    add("main", "/img/huge-chunked.jpg", stream(60 * MB, "image/jpeg", content_length=False))
    add("main", "/img/gzip-bomb.jpg", gzipped(20 * MB, "image/jpeg"))
    add("main", "/img/drip.jpg", drip(site, "image/jpeg"))
    add("main", "/img/silent.jpg", silent(site))
    add("main", "/img/redirect-loop.jpg", redirect("/img/redirect-loop.jpg"))
    add("main", REFUSED_IMAGE, redirect(site.base["other"] + "/img/x.jpg"))
    add("other", "*", fixed(200, ok, "image/jpeg"))
    busy = fixed(429, "slow down", "text/plain", Retry_After="1")
    add("main", "/img/burst-429.jpg", sequence(busy, busy, fixed(200, picture(3), "image/jpeg")))
    add("main", "/img/odd-retry.jpg", sequence(fixed(503, "later", "text/plain", Retry_After="soon"),
                                               fixed(503, "later", "text/plain",
                                                     Retry_After="Wed, 21 Oct 2015 07:28:00 GMT"),
                                               fixed(200, picture(4), "image/jpeg")))
    cases = [(c.path, f"Hostile picture {c.path.rsplit('/', 1)[1].split('.')[0]} at dusk") for c in IMAGE_CASES]
    cases += [(REFUSED_IMAGE, "A view from somewhere else"), (SVG_IMAGE, "A drawing of the old harbour")]
    add("main", "/a/images.html", fixed(200, article("Every hostile image", cases)))
    # host b asks for an hour's pause on every image: the crawl must give up the host, not just one URL.  Its
    # first image is on /a/other-host.html, four more on a page linked from there that answers 0.6 s late, so
    # the first 429 is in before they are due.
    add("b", "*", fixed(429, "go away", "text/plain", Retry_After="3600"))
    for path in ("/robots.txt", "/.well-known/tdmrep.json"):
        add("b", path, fixed(404, "none", "text/plain"))
    tram = [(f"{site.base['b']}/img/b{i}.jpg", f"A tram stop number {i} in the rain") for i in range(5)]
    more = "<a href='/a/later.html'>more</a>"
    add("main", "/a/other-host.html", fixed(200, article("Host b", tram[:1], after=more)))
    later = fixed(200, article("Host b, later", tram[1:]))
    add("main", "/a/later.html", lambda h, n: site.closing.wait(0.6) or later(h, n))


def _pages(site: HostileSite) -> None:
    add = site.add
    add("main", "/p/big.html", stream(50 * MB, "text/html", content_length=True))
    add("main", "/p/gzip-bomb.html", gzipped(20 * MB, "text/html"))
    add("main", "/p/drip.html", drip(site, "text/html"))
    add("main", "/p/silent.html", silent(site))
    add("main", "/p/loop.html", redirect("/p/loop-b.html"))
    add("main", "/p/loop-b.html", redirect("/p/loop.html"))
    add("main", "/p/redirect-other.html", redirect(site.base["other"] + "/p/x.html"))
    add("main", "/img/deep.jpg", fixed(200, picture(5), "image/jpeg"))
    add("main", "/p/deep.html", fixed(200, article("Deep", [("/img/deep.jpg", "A lighthouse seen from the pier")],
                                                   before="<div>" * 100_000, after="</div>" * 100_000)))
    add("main", "/img/utf8.jpg", fixed(200, picture(6), "image/jpeg"))
    page = article("Caf\u00e9", [("/img/utf8.jpg", "Caf\u00e9 de la Paix at noon XX")]).encode()
    add("main", "/p/bad-utf8.html", fixed(200, page.replace(b"XX", b"\xff\xfe\xc3("), "text/html; charset=utf-8"))
    add("main", "/img/busy.jpg", fixed(200, picture(7), "image/jpeg"))
    later = fixed(503, "busy", "text/plain")
    add("main", "/p/busy.html", sequence(later, later, fixed(200, article(
        "Busy", [("/img/busy.jpg", "A crowded market square at noon")]))))
    links = [c.path for c in PAGE_CASES] + ["/a/images.html", "/a/other-host.html"]
    add("main", "/", fixed(200, "<html><body>" + "".join(f"<a href='{p}'>{p}</a>" for p in links) + "</body></html>"))
    add("main", "/robots.txt", fixed(200, "User-agent: *\nAllow: /\n", "text/plain"))


def _robots_hosts(site: HostileSite) -> None:
    big = ("User-agent: *\nDisallow: /private/\n" + "# filler line of a very long robots.txt\n" * 130_000
           + "Disallow: /late/\n")
    site.add("r500", "/robots.txt", fixed(500, "oops", "text/plain"))
    site.add("rslow", "/robots.txt", silent(site))
    site.add("rbig", "/robots.txt", fixed(200, big, "text/plain"))
    for host in ROBOTS_HOSTS:
        site.add(host, f"/img/{host}.jpg", fixed(200, picture(10 + len(host) + ord(host[1])), "image/jpeg"))
        site.add(host, "/a.html", fixed(200, article(host, [(f"/img/{host}.jpg", f"The {host} bridge at night")])))
        site.add(host, "/private/p.html", fixed(200, article("private", [(f"/img/{host}.jpg", "Not for us")])))
        site.add(host, "/late/l.html", fixed(200, article("late", [(f"/img/{host}.jpg", "Past the cut-off")])))
        site.add(host, "/", fixed(200, "<html><body><a href='/a.html'>a</a><a href='/private/p.html'>p</a>"
                                       "<a href='/late/l.html'>l</a></body></html>"))


SM = "http://www.sitemaps.org/schemas/sitemap/0.9"


def _discovery(site: HostileSite) -> None:
    base = site.base["main"]

    def chain(h, n):  # /sm/chain-N.xml lists /sm/chain-(N+1).xml: an endless index chain
        k = int(h.path.rsplit("-", 1)[1].split(".")[0])
        send(h, 200, f"<sitemapindex xmlns='{SM}'><sitemap><loc>{base}/sm/chain-{k + 1}.xml</loc></sitemap>"
                     "</sitemapindex>".encode(), "application/xml")

    def tree(h, n):  # /sm2/t-N.xml lists two children: endless and growing
        k = int(h.path.rsplit("-", 1)[1].split(".")[0])
        locs = "".join(f"<sitemap><loc>{base}/sm2/t-{2 * k + j}.xml</loc></sitemap>" for j in (1, 2))
        send(h, 200, f"<sitemapindex xmlns='{SM}'>{locs}</sitemapindex>".encode(), "application/xml")

    for k in range(64):
        site.add("main", f"/sm/chain-{k}.xml", chain)
        site.add("main", f"/sm2/t-{k}.xml", tree)
    items = "".join(f"<item><link>{base}/f/{i}.html</link></item>" for i in range(FEED_ITEMS))  # 5.7 MB
    feed = f"<?xml version='1.0'?><rss version='2.0'><channel><title>big</title>{items}</channel></rss>"
    site.add("main", "/feed-100k.xml", fixed(200, feed, "application/rss+xml"))
    for i in range(10):
        site.add("main", f"/f/{i}.html", fixed(200, article(f"Feed story {i}", [(f"/img/f{i}.jpg", "A kite")])))


def status(i: int, base: str, *, image: bool) -> dict:
    media = [{"id": str(i), "type": "image", "url": f"{base}/img/m{i}.jpg",
              "description": f"A heron standing in the reeds, picture {i}"}] if image else []
    return {"id": str(i), "url": f"{base}/@u/{i}", "created_at": "2024-05-01T10:00:00Z", "language": "en",
            "content": f"<p>post {i}</p>", "sensitive": False, "account": {"noindex": False},
            "media_attachments": media}


def _api(site: HostileSite) -> None:
    base = site.base["api"]

    def timeline(h, n):
        tag = h.path.split("?", 1)[0].rsplit("/", 1)[1]
        if tag == "loop":  # the same two statuses on every page, with a new cursor each time
            body = [status(1, base, image=True), status(2, base, image=True)]
        else:  # "fresh": two new statuses without images on every page, forever
            body = [status(1000 + 2 * n + j, base, image=False) for j in (0, 1)]
        link = f"<{base}/api/v1/timelines/tag/{tag}?limit=2&max_id={10_000 - n}>; rel=\"next\""
        send(h, 200, json.dumps(body).encode(), "application/json", Link=link)

    for tag in ("loop", "fresh"):
        site.add("api", f"/api/v1/timelines/tag/{tag}", timeline)
    for i in (1, 2):
        site.add("api", f"/img/m{i}.jpg", fixed(200, picture(20 + i), "image/jpeg"))
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    site.add("api", "/api/v1/timelines/tag/deep", fixed(200, deep, "application/json"))


