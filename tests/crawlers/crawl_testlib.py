"""Helpers of the crawl tests: fast loopback crawl configs, RAW readers, and a tiny scriptable HTTP server for
politeness checks that the demo site does not plant."""

from __future__ import annotations

import io
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
from PIL import Image

from crawlers.config import CrawlConfig, SourceConfig
from data_schemas import RAW_SCHEMA, validate


def fast_config(sources: list[SourceConfig], out: Path, **kw) -> CrawlConfig:
    """Loopback crawls: no AutoThrottle ramp-up (the server is local), everything else as configured."""
    defaults = dict(allow_private=True, autothrottle=False, per_domain_concurrency=16, rows_per_file=40,
                    parallel_sources=3, download_timeout=20, backoff_base=0.2)
    return CrawlConfig(sources=sources, out=out, **{**defaults, **kw})


def read_raw(out: Path) -> pa.Table:
    files = sorted(Path(out).glob("*.parquet"))
    tables = [validate(f, RAW_SCHEMA) for f in files]
    return pa.concat_tables(tables) if tables else RAW_SCHEMA.empty_table()


def raw_rows(out: Path, *, with_bytes: bool = False) -> list[dict]:
    table = read_raw(out)
    if not with_bytes:
        table = table.drop(["image_bytes"])
    return table.to_pylist()


def jpeg(seed: int, size=(320, 240)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (seed * 40 % 256, 90, 160)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def article_html(title: str, images: list[tuple[str, str]]) -> str:
    """An article page: one <figure> per (src, alt), each with a figcaption."""
    figures = "".join(f"<figure><img src='{src}' alt='{alt}'><figcaption>{alt} in the city centre."
                      f"</figcaption></figure>" for src, alt in images)
    return (f"<html lang='en'><head><title>{title}</title><meta property='og:type' content='article'></head>"
            f"<body><article><h1>{title}</h1>{figures}<p>Some text.</p></article></body></html>")


# --- a tiny scriptable site ---------------------------------------------------------------------------------
Route = Callable[[int], tuple[int, dict, bytes]]  # n-th request of this path (1-based) -> status, headers, body


class LocalSite:
    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, list[float]] = defaultdict(list)
        self.request_headers: dict[str, list[dict[str, str]]] = defaultdict(list)
        self.lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                return

            def do_GET(self):  # noqa: N802
                with site.lock:
                    site.hits[self.path].append(time.monotonic())
                    site.request_headers[self.path].append(dict(self.headers.items()))
                    n = len(site.hits[self.path])
                route = site.routes.get(self.path)
                status, headers, body = route(n) if route else (404, {"Content-Type": "text/plain"}, b"nope")
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add(self, path: str, body: bytes | str, ctype: str = "text/html; charset=utf-8", status: int = 200,
            **headers: str) -> None:
        data = body.encode() if isinstance(body, str) else body
        hdrs = {"Content-Type": ctype, **{k.replace("_", "-"): v for k, v in headers.items()}}
        self.routes[path] = lambda n: (status, hdrs, data)

    def count(self, path: str) -> int:
        return len(self.hits.get(path, []))
