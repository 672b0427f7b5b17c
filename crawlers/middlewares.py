"""Downloader middlewares: address safety (before the request and on the connected peer), takedown blocklist,
robots.txt (with its Sitemap: lines for the spider) and TDMRep with counted reasons, and `Retry-After`-aware
backoff for 429/503.

Policy refusals raise `PolicyDrop` (an `IgnoreRequest`), so they reach the request's errback, which counts them
per (page, image) pair under the shared `data_schemas.reasons` names.
"""

from __future__ import annotations

import logging
import re
import time

from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Request, Response, TextResponse
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from crawlers.fetch import is_public_ip, parse_tdmrep, resolve_all, retry_after_seconds
from crawlers.spiders.deadline import time_left
from data_schemas import Blocklist
from data_schemas import reasons as R

logger = logging.getLogger(__name__)


class PolicyDrop(IgnoreRequest):
    """A request refused by policy; `reason` is a `data_schemas.reasons` name or an error kind."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason


PRIVATE_ADDRESS = "private_address"  # error kind: refused because the host resolves to a non-public address
PRIVATE_CONNECTED = "private_address_connected"  # error kind: the response came from a non-public address
_MISSING = object()


class AddressSafetyMiddleware:
    """Refuse private, loopback, link-local and reserved addresses before connecting: every request's host
    (redirects included) is resolved and refused when *any* of its addresses is not public, unless the crawl config
    sets `allow_private`.  `ConnectedAddressMiddleware` checks the address actually connected to."""

    def __init__(self, crawler):
        if crawler.settings.getbool("MMPIPE_ALLOW_PRIVATE"):
            raise NotConfigured
        self.cache: dict[str, bool] = {}

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_request(self, request: Request, spider=None) -> None:
        host = urlparse_cached(request).hostname or ""
        ok = self.cache.get(host)
        if ok is None:
            ok = await self._check(host)
            self.cache[host] = ok
        if not ok:
            raise PolicyDrop(PRIVATE_ADDRESS, f"refused {request.url}: {host} is a private/loopback/link-local "
                                              "address (set allow_private: true to crawl it)")

    async def _check(self, host: str) -> bool:
        try:
            return is_public_ip(host.strip("[]"))
        except ValueError:
            pass
        if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
            return False
        try:
            addresses = await resolve_all(host)
        except Exception:  # noqa: BLE001 - unresolvable: the download itself reports the DNS error
            return True
        return all(is_public_ip(ip) for ip in addresses)


class ConnectedAddressMiddleware:
    """Drop a response that came from a non-public address although its host passed the check before the request:
    a name can resolve to a public address for the check and to a private one for the connection (DNS rebinding,
    a resolver without a cache).  Placed next to the download handler, so no other middleware (redirects, retries)
    nor any callback sees such a response."""

    def __init__(self, crawler):
        if crawler.settings.getbool("MMPIPE_ALLOW_PRIVATE"):
            raise NotConfigured

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_response(self, request: Request, response: Response, spider=None) -> Response:
        ip = response.ip_address
        if ip is not None and not is_public_ip(str(ip)):
            raise PolicyDrop(PRIVATE_CONNECTED, f"dropped {request.url}: the connection went to {ip}, a private/"
                                                "loopback/link-local address (set allow_private: true to crawl it)")
        return response


class BlocklistMiddleware:
    def __init__(self, crawler):
        path = crawler.settings.get("MMPIPE_BLOCKLIST")
        self.blocklist = Blocklist.load(path) if path else Blocklist()
        if not len(self.blocklist):
            raise NotConfigured

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_request(self, request: Request, spider=None) -> None:
        if self.blocklist.blocks_url(request.url):
            raise PolicyDrop(R.BLOCKLISTED_URL, f"{request.url} is on the takedown blocklist")


class CountingRobotsTxtMiddleware(RobotsTxtMiddleware):
    """Scrapy's robots.txt middleware, but a refusal carries `reasons.ROBOTS_DISALLOWED` to the errback, and a
    host whose robots.txt is already parsed is checked synchronously (no coroutine per request)."""

    def process_request(self, request: Request, spider=None):
        if request.meta.get("dont_obey_robotstxt") or request.url.startswith(("data:", "file:")):
            return self._sitemaps_response(request) if request.meta.get("mm_robots_sitemaps") else None
        parser = self._parsers.get(urlparse_cached(request).netloc, _MISSING)
        if parser is None:  # robots.txt could not be fetched: allowed
            return None
        if parser is not _MISSING and not isinstance(parser, Deferred):
            self.process_request_2(parser, request)
            return None
        return super().process_request(request)

    async def _sitemaps_response(self, request: Request) -> Response | None:
        """The spider's robots.txt request (for its Sitemap: lines) is answered from the robots.txt this middleware
        fetches for the host anyway, so each host's file is downloaded once; the answer lists the Sitemap: lines.
        None (download it as usual) when the file could not be fetched or the parser does not keep them."""
        rp = await self.robot_parser(request)
        sitemaps = getattr(getattr(rp, "rp", None), "sitemaps", None)  # Protego's, Scrapy's default parser
        if rp is None or sitemaps is None:
            return None
        body = "".join(f"Sitemap: {url}\n" for url in sitemaps)
        return TextResponse(request.url, body=body.encode(), encoding="utf-8", request=request,
                            headers={"Content-Type": "text/plain; charset=utf-8"})

    def process_request_2(self, rp, request: Request) -> None:
        try:
            super().process_request_2(rp, request)
        except IgnoreRequest as exc:
            raise PolicyDrop(R.ROBOTS_DISALLOWED, f"{request.url} is disallowed by robots.txt") from exc


class TDMRepMiddleware:
    """TDMRep (W3C CG): `/.well-known/tdmrep.json` rules per origin, fetched once like robots.txt, and the
    `tdm-reservation: 1` response header."""

    def __init__(self, crawler):
        self.crawler = crawler
        self.rules: dict[str, list[tuple[re.Pattern, bool]] | Deferred] = {}

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_request(self, request: Request, spider=None):
        if request.meta.get("mm_policy_file"):
            return None
        parts = urlparse_cached(request)
        rules = self.rules.get(f"{parts.scheme}://{parts.netloc}")
        if isinstance(rules, list):  # the usual case: checked without a coroutine
            self._check(rules, request)
            return None
        return self._check_later(request)

    async def _check_later(self, request: Request) -> None:
        self._check(await self._rules(request), request)

    @staticmethod
    def _check(rules: list[tuple[re.Pattern, bool]], request: Request) -> None:
        path = urlparse_cached(request).path or "/"
        for pattern, reserved in rules:
            if pattern.match(path):
                if reserved:
                    raise PolicyDrop(R.OPT_OUT_TDMREP, f"{request.url}: TDM rights reserved by tdmrep.json")
                return

    def process_response(self, request: Request, response: Response, spider=None) -> Response:
        """Discovery documents with the header are refused here; pages and images are judged by the spider,
        which knows how many (page, image) pairs the refusal drops."""
        if request.meta.get("mm_kind") in ("discovery", "listing", "api") and \
                response.headers.get(b"tdm-reservation", b"").strip() == b"1":
            raise PolicyDrop(R.OPT_OUT_TDMREP, f"{request.url}: tdm-reservation header")
        return response

    async def _rules(self, request: Request) -> list[tuple[re.Pattern, bool]]:
        parts = urlparse_cached(request)
        origin = f"{parts.scheme}://{parts.netloc}"
        found = self.rules.get(origin)
        if isinstance(found, list):
            return found
        if found is None:  # first request to this origin: fetch the file; others wait on a Deferred
            waiting: Deferred = Deferred()
            self.rules[origin] = waiting
            rules = await self._fetch(origin)
            self.rules[origin] = rules
            waiting.callback(rules)
            return rules
        return await maybe_deferred_to_future(found)

    async def _fetch(self, origin: str) -> list[tuple[re.Pattern, bool]]:
        req = Request(f"{origin}/.well-known/tdmrep.json", callback=NO_CALLBACK, priority=1000,
                      meta={"dont_obey_robotstxt": True, "mm_policy_file": True, "dont_retry": False,
                            "handle_httpstatus_all": True})
        try:
            resp = await self.crawler.engine.download_async(req)
        except Exception as exc:  # noqa: BLE001 - no file is no reservation
            logger.debug("no tdmrep.json at %s (%s)", origin, exc)
            return []
        self.crawler.stats.inc_value("mmpipe/tdmrep/fetched")
        if resp.status != 200:
            return []
        return parse_tdmrep(resp.body)


class BackoffMiddleware:
    """429/503: wait `Retry-After` (or an exponential backoff) before the same host gets any new request, then
    retry; give up after `backoff_retries` or when the server asks for more than `max_retry_after` seconds."""

    def __init__(self, crawler):
        s = crawler.settings
        self.crawler, self.stats = crawler, crawler.stats
        self.max_tries = s.getint("MMPIPE_BACKOFF_RETRIES", 3)
        self.base = s.getfloat("MMPIPE_BACKOFF_BASE", 1.0)
        self.max_wait = s.getfloat("MMPIPE_MAX_RETRY_AFTER", 120.0)
        self.not_before: dict[str, float] = {}

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_request(self, request: Request, spider=None):
        if not self.not_before:
            return None
        wait = self.not_before.get(urlparse_cached(request).netloc, 0.0) - time.monotonic()
        left = time_left(self.crawler)  # max_seconds: never wait past the deadline
        if left is not None:
            wait = min(wait, left)
        if wait > 0:
            from twisted.internet import reactor, task  # late import: importing the reactor installs one

            self.stats.inc_value("mmpipe/backoff/waits")
            return task.deferLater(reactor, wait, lambda: None)  # this request waits; other hosts go on
        return None

    def process_response(self, request: Request, response: Response, spider=None):
        if response.status not in (429, 503):
            return response
        tries = request.meta.get("mm_backoff", 0)
        advised = retry_after_seconds(response.headers.get(b"Retry-After"))
        wait = advised if advised is not None else self.base * (2 ** tries)
        if tries >= self.max_tries or wait > self.max_wait:
            self.stats.inc_value("mmpipe/backoff/gave_up")
            return response
        host = urlparse_cached(request).netloc
        self.not_before[host] = max(self.not_before.get(host, 0.0), time.monotonic() + wait)
        self.stats.inc_value(f"mmpipe/backoff/{response.status}")
        logger.info("%s %s: waiting %.1fs before retrying %s", response.status, host, wait, request.url)
        retry = request.replace(dont_filter=True)
        retry.meta["mm_backoff"] = tries + 1
        return retry
