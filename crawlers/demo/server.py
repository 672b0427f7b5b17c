"""The demo site over real HTTP: a threading HTTP/1.1 server on loopback, with the few stateful behaviours.

State lives here, not in DemoSite: the first request to a "500_once" URL gets 500 and to the "429_once" page gets
429 with ``Retry-After: 1`` (both answer 200 afterwards), "slow" URLs sleep SLOW_SECONDS before answering, and
every request is counted in ``requests`` (path with query -> count) so tests can check what a crawler fetched.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from crawlers.demo.site import DemoSite, DemoSiteConfig, generate_site
from crawlers.demo.truth import PairTruth

SLOW_SECONDS = 1.5
RETRY_AFTER_SECONDS = 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "DemoGazette/1.0"
    sys_version = ""
    server: DemoHTTPServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        return  # the request log is `requests`; stderr noise helps nobody in tests

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib naming
        self._serve(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._serve(head=False)

    def _serve(self, *, head: bool) -> None:
        srv = self.server
        path = urlsplit(self.path).path
        first = srv.record(self.path, path)
        behaviour = srv.behaviours.get(path)
        if behaviour == "500_once" and first:
            status, headers, body = 500, {"Content-Type": "text/plain"}, b"Internal Server Error\n"
        elif behaviour == "429_once" and first:
            status, headers, body = 429, {"Content-Type": "text/plain", "Retry-After": str(RETRY_AFTER_SECONDS)}, (
                b"Too Many Requests\n")
        else:
            if behaviour == "slow":
                time.sleep(SLOW_SECONDS)
            try:
                status, headers, body = srv.site.response(self.path, base_url=srv.base_url)
            except Exception as exc:  # noqa: BLE001 - a bug in the demo must show as a 500, not a dropped socket
                status, headers, body = 500, {"Content-Type": "text/plain"}, f"demo site error: {exc}\n".encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)


class DemoHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, site: DemoSite, host: str = "127.0.0.1", port: int = 0):
        super().__init__((host, port), _Handler)
        self.site = site
        self.base_url = f"http://{host}:{self.server_address[1]}"
        site.base_url = self.base_url
        self.behaviours = site.stateful()
        self.requests: Counter[str] = Counter()
        self.request_paths: Counter[str] = Counter()
        self._lock = threading.Lock()

    def handle_error(self, request, client_address) -> None:
        """A crawler that gives up on a slow response closes its socket: that is not an error worth a traceback."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def record(self, path_with_query: str, path: str) -> bool:
        """Count the request; True when it is the first request for this path."""
        with self._lock:
            self.requests[path_with_query] += 1
            self.request_paths[path] += 1
            return self.request_paths[path] == 1


class RunningDemo:
    """A demo site being served in a background thread; ``truth`` has absolute URLs for this server."""

    def __init__(self, server: DemoHTTPServer):
        self.server = server
        self.site = server.site
        self.base_url = server.base_url
        self.truth: list[PairTruth] = self.site.absolute_truth(self.base_url)

    @property
    def requests(self) -> Counter[str]:
        """Requests so far: path with query -> count (a copy)."""
        with self.server._lock:
            return Counter(self.server.requests)

    @property
    def request_paths(self) -> Counter[str]:
        with self.server._lock:
            return Counter(self.server.request_paths)

    def url(self, path: str) -> str:
        return self.base_url + path


@contextlib.contextmanager
def running_demo_site(articles: int = DemoSiteConfig.articles, seed: int = DemoSiteConfig.seed, *,
                      host: str = DemoSiteConfig.host, port: int = 0,
                      site: DemoSite | None = None, **site_kwargs) -> Iterator[RunningDemo]:
    """Serve a demo site on a free loopback port for the duration of the ``with`` block."""
    site = site or generate_site(articles, seed, **site_kwargs)
    server = DemoHTTPServer(site, host, port)
    thread = threading.Thread(target=server.serve_forever, name="mmpipe-demo-site", daemon=True)
    thread.start()
    try:
        yield RunningDemo(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
