"""The one place that touches private Scrapy, Twisted and CPython state: every throughput trick of the crawl.

Each trick sits behind one named switch (`TRICKS`), and each has a contract test
(`tests/crawlers/test_internals_contract.py`) that asserts the private attribute, method or behaviour it relies on,
so that a Scrapy or Twisted release that changes it fails the test suite loudly instead of silently bringing back
a 5-s idle wait or a deadline that no longer drains.  `pyproject.toml` bounds Scrapy to the minor release these
tests were run against; `crawlers/README.md` says how to lift the bound.

A switch named in the environment variable `MMPIPE_INTERNALS_OFF` (comma-separated; read once per process, and
inherited by the source processes) turns its trick off and falls back to Scrapy's public behaviour, slower but
correct, until the trick is fixed for a new release:

- `safe_url`: `SafeUrlRequest` skips w3lib's re-serialisation of URLs already in its form (`Request._set_url`);
- `aiohttp_session`: the aiohttp handler built with the reactor's resolver (Scrapy's private handler module and
  attributes); off, `transport: aiohttp` runs on Twisted's client instead;
- `idle_nudge`: the engine looks for idleness as soon as the last image is handled (`engine._slot.nextcall`);
- `drain_slots`: at a `max_seconds` deadline the download slots' queues are failed (`Slot.queue`/`latercall`);
- `robots_fast_path`: a host whose robots.txt is parsed is checked without a coroutine (`_parsers`);
- `hide_numpy`: pyarrow does not import numpy/pandas in a crawl process (a `sys.meta_path` finder);
- `gc_tune`: CPython's collector frozen at start-up and run less often;
- `quiet_root_logger`: the root logger filters below LOG_LEVEL before records are built;
- `no_tunnel_retry`: aiohttp crawls do not load Twisted's client to name its `TunnelError` in RETRY_EXCEPTIONS.

Not switchable: `RobotsTxtBase`'s hooks on `_parse_robots` / `_robots_error`, which carry RFC 9309's status rules
(a policy, not a speed-up); their contract test guards them the same way.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import aiohttp
from scrapy import signals
from scrapy.core.downloader.handlers._aiohttp import AiohttpDownloadHandler, _ClientResponse
from scrapy.core.downloader.handlers._base_streaming import BaseStreamingDownloadHandler
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.http import Request
from scrapy.settings import default_settings
from scrapy.utils.ssl import _make_ssl_context

SWITCHES = ("safe_url", "aiohttp_session", "idle_nudge", "drain_slots", "robots_fast_path", "hide_numpy", "gc_tune",
            "quiet_root_logger", "no_tunnel_retry")
OFF_ENV = "MMPIPE_INTERNALS_OFF"


def _switches(off: str) -> dict[str, bool]:
    names = {n.strip() for n in off.split(",") if n.strip()}
    unknown = names - set(SWITCHES)
    if unknown:
        raise ValueError(f"{OFF_ENV}: unknown trick(s) {sorted(unknown)}; known: {', '.join(SWITCHES)}")
    return {name: name not in names for name in SWITCHES}


TRICKS = _switches(os.environ.get(OFF_ENV, ""))


# --- safe_url: Request._set_url -------------------------------------------------------------------------------
# Scrapy passes every request URL through `w3lib.url.safe_url_string`, which splits, IDNA-encodes and
# percent-quotes it (a visible share of a crawl's CPU, BENCHMARKS.md), though the URLs our extractors produce are
# nearly always already in the form it returns.  A URL that `ALREADY_SAFE` matches is kept as it is (a lower-case
# http(s) host, a port without leading zeros, only characters `safe_url_string` leaves alone, no fragment, no
# empty query); any other URL goes to Scrapy, so the stored URL is `safe_url_string`'s in every case (a test checks
# the pattern against it on many generated URLs).  Redirects replace the URL through the same check.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PORT = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_PATH = r"[A-Za-z0-9\-._~:/@!$&'()*+,;=%]"  # w3lib's path-safest characters, less the ? that ends a path
_QUERY = r"[A-Za-z0-9\-._~:/?@!$&()*+,;=%]"  # its query-safest characters for http(s) (no ')
ALREADY_SAFE = re.compile(rf"https?://{_LABEL}(?:\.{_LABEL})*(?::{_PORT})?(?:/{_PATH}*(?:\?{_QUERY}+)?)?")


class SafeUrlRequest(Request):
    """A `Request` whose URL skips `safe_url_string` where it would return it unchanged."""

    if TRICKS["safe_url"]:
        def _set_url(self, url: str) -> None:
            if type(url) is str and ALREADY_SAFE.fullmatch(url):
                self._url = url
            else:
                super()._set_url(url)


# --- aiohttp_session: Scrapy's private aiohttp handler --------------------------------------------------------
class AiohttpHandlerBase(AiohttpDownloadHandler):
    """Scrapy's aiohttp handler, built on first use (aiohttp needs the running event loop, which the reactor
    starts after the handlers are loaded) with the resolver `make_resolver` returns and without aiohttp's own DNS
    cache.  The parent's `__init__` is skipped: it builds its own connector, with aiohttp's resolver."""

    lazy = True
    experimental = False  # adopted deliberately: the crawl tests and the benchmark run through it

    def make_resolver(self) -> aiohttp.abc.AbstractResolver:
        raise NotImplementedError

    def __init__(self, crawler: Any):
        BaseStreamingDownloadHandler.__init__(self, crawler)
        self._ssl_context = _make_ssl_context(crawler.settings)
        connector = aiohttp.TCPConnector(local_addr=self._bind_address, limit=self._pool_size_total,
                                         limit_per_host=self._pool_size_per_host, resolver=self.make_resolver(),
                                         use_dns_cache=False)
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
            response_class=_ClientResponse,
            skip_auto_headers=("Accept", "Accept-Encoding", "Content-Type", "User-Agent"))


def aiohttp_usable() -> bool:
    """Whether `transport: aiohttp` may use `AiohttpHandlerBase` (else it runs on Twisted's client)."""
    return TRICKS["aiohttp_session"]


# --- idle_nudge: engine._slot.nextcall ------------------------------------------------------------------------
def nudge_engine(engine) -> None:
    """Let the engine look for idleness now.  An idle check that ran between a direct download's end and its
    handling found work in flight and kept the spider open; without this nudge the engine would only look again
    at its 5-s heartbeat.  (Scrapy's engine nudges itself the same way after each download; there is no public
    call for it.)"""
    if not TRICKS["idle_nudge"]:
        return
    slot = getattr(engine, "_slot", None)
    if slot is not None and getattr(slot, "nextcall", None) is not None:
        slot.nextcall.schedule()


# --- drain_slots: the downloader's slot queues ----------------------------------------------------------------
def drain_downloader(downloader, make_error: Callable[[Request], BaseException]) -> int:
    """Fail the requests waiting in download slot queues (behind download delays) with `make_error(request)`.
    Off: a close waits for them as Scrapy does."""
    if not TRICKS["drain_slots"]:
        return 0
    drained = 0
    for slot in list(downloader.slots.values()):
        if slot.latercall is not None:
            slot.latercall.cancel()
            slot.latercall = None
        while slot.queue:
            request, queued = slot.queue.popleft()
            queued.errback(make_error(request))
            drained += 1
    return drained


# --- robots.txt: RobotsTxtMiddleware's private parser table and hooks -----------------------------------------
MISSING = object()  # no entry for the host yet


class RobotsTxtBase(RobotsTxtMiddleware):
    """Scrapy's robots.txt middleware with its private parts under public names.

    Subclasses override `robots_response` (return the response to parse, or None when handled) and
    `robots_failed` (return True to let Scrapy handle the failure as usual)."""

    @property
    def stats(self):
        return self._stats

    def cached_parser(self, netloc: str):
        """The host's parser (or a Deferred, or None) when known and `robots_fast_path` is on; else `MISSING`."""
        return self._parsers.get(netloc, MISSING) if TRICKS["robots_fast_path"] else MISSING

    def replace_parser(self, netloc: str, rules) -> Any:
        """Store `rules` as the host's parser; returns what was there (a Deferred others wait on, or None)."""
        waiting = self._parsers.get(netloc)
        self._parsers[netloc] = rules
        return waiting

    def robots_response(self, response, netloc: str):
        return response

    def robots_failed(self, exc: Exception, netloc: str) -> bool:
        return True

    async def _parse_robots(self, response, netloc: str, request) -> None:
        response = self.robots_response(response, netloc)
        if response is not None:
            await super()._parse_robots(response, netloc, request)

    def _robots_error(self, exc: Exception, netloc: str) -> None:
        if self.robots_failed(exc, netloc):
            super()._robots_error(exc, netloc)


# --- no_tunnel_retry: RETRY_EXCEPTIONS without Twisted's TunnelError ------------------------------------------
_TUNNEL_ERROR = "scrapy.core.downloader.handlers.http11.TunnelError"


def retry_exceptions_for_aiohttp() -> list[str] | None:
    """Scrapy's RETRY_EXCEPTIONS less Twisted's TunnelError, which only Twisted's client raises and whose loading
    imports that client and its TLS stack at every process's start (BENCHMARKS.md); None: keep Scrapy's."""
    if not TRICKS["no_tunnel_retry"]:
        return None
    return [e for e in default_settings.RETRY_EXCEPTIONS if e != _TUNNEL_ERROR]


# --- hide_numpy: a sys.meta_path finder -----------------------------------------------------------------------
class _Unused:
    """pyarrow imports numpy (if installed) when it loads, and pandas on its first `pa.array()`, only to recognise
    their types among its inputs: CPU per source process for libraries the crawler never uses or hands to pyarrow
    (BENCHMARKS.md).  Hiding them from this process makes pyarrow skip both."""

    names = ("pandas", "numpy")

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in cls.names:
            raise ModuleNotFoundError(f"{name} is not used by the crawl process", name=name)
        return None


def hide_unused_modules() -> bool:
    """Make numpy and pandas unimportable in this (crawl) process, unless one is loaded already."""
    if not TRICKS["hide_numpy"] or any(name in sys.modules for name in _Unused.names):
        return False
    if _Unused not in sys.meta_path:
        sys.meta_path.insert(0, _Unused)
    return True


# --- gc_tune / quiet_root_logger: CPython's collector and the root logger --------------------------------------
GC_YOUNG = 200_000  # net new container objects between young-generation collections (CPython's default: 700)


def tune_gc() -> None:
    """A crawl allocates and frees millions of short-lived containers (requests, responses, Deferreds, futures),
    and CPython's default collector (a young-generation pass every 700 net allocations; full passes over every
    object, the tens of thousands of Scrapy's, Twisted's, aiohttp's and pyarrow's modules included) took a large
    share of each crawl process's CPU on the benchmark (BENCHMARKS.md).  Freezing what exists at start-up keeps the
    full passes off it; a young pass once the tracked objects have grown by `GC_YOUNG` leaves cyclic garbage
    collected in batches, at the same peak memory: most objects die by reference count first."""
    if TRICKS["gc_tune"]:
        gc.freeze()
        gc.set_threshold(GC_YOUNG, 10, 10)


def quiet_root_logger(crawler) -> None:
    """Scrapy leaves the root logger at NOTSET and filters in its handler, so every DEBUG message (a "Crawled
    (200)" line per request among them) is built into a record before the handler drops it.  The root logger at
    the configured level drops them first.  (Set when the engine starts: applying the crawler's settings installs
    Scrapy's handler again, which resets the level.)"""
    if not TRICKS["quiet_root_logger"]:
        return

    def set_level() -> None:
        logging.root.setLevel(crawler.settings.get("LOG_LEVEL"))

    crawler.signals.connect(set_level, signal=signals.engine_started, weak=False)

