"""Downloader middlewares: address safety (before the request and on the connected peer), takedown blocklist,
robots.txt (with its Sitemap: lines for the spider) and TDMRep with counted reasons, and `Retry-After`-aware
backoff for 429/503.

Policy refusals raise `PolicyDrop` (an `IgnoreRequest`), so they reach the request's errback, which counts them
per (page, image) pair under the shared `data_schemas.reasons` names.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time

from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Request, Response, TextResponse
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from crawlers.fetch import error_kind, resolve_all, retry_after_seconds
from crawlers.internals import MISSING, RobotsTxtBase
from crawlers.optout import address_allowed, document_opt_out, local_name, parse_tdmrep, tdmrep_reserved
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


class _AddressPolicy:
    """Which addresses a crawl may connect to: public ones, plus the config's `private_networks`."""

    def __init__(self, crawler):
        if crawler.settings.getbool("MMPIPE_ALLOW_PRIVATE"):
            raise NotConfigured
        self.networks = [ipaddress.ip_network(n, strict=False)
                         for n in crawler.settings.getlist("MMPIPE_PRIVATE_NETWORKS")]

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def allowed(self, ip: str) -> bool:
        return address_allowed(ip, self.networks)


class AddressSafetyMiddleware(_AddressPolicy):
    """Refuse private, loopback, link-local and reserved addresses before connecting: every request's host
    (redirects included) is resolved and refused when *any* of its addresses is not public (nor in the config's
    `private_networks`), unless the crawl config sets `allow_private`.  `ConnectedAddressMiddleware` checks the
    address actually connected to."""

    def __init__(self, crawler):
        super().__init__(crawler)
        self.cache: dict[str, bool] = {}

    async def process_request(self, request: Request, spider=None) -> None:
        host = urlparse_cached(request).hostname or ""
        ok = self.cache.get(host)
        if ok is None:
            ok = await self._check(host)
            self.cache[host] = ok
        if not ok:
            raise PolicyDrop(PRIVATE_ADDRESS, f"refused {request.url}: {host} is a private/loopback/link-local "
                                              "address (set allow_private: true or private_networks to crawl it)")

    async def _check(self, host: str) -> bool:
        try:
            return self.allowed(host.strip("[]"))
        except ValueError:
            pass
        if not self.networks and local_name(host):
            return False
        try:
            addresses = await resolve_all(host)
        except Exception:  # noqa: BLE001 - unresolvable: the download itself reports the DNS error
            return True
        return all(self.allowed(ip) for ip in addresses)


class ConnectedAddressMiddleware(_AddressPolicy):
    """Drop a response that came from a non-public address although its host passed the check before the request:
    a name can resolve to a public address for the check and to a private one for the connection (DNS rebinding,
    a resolver without a cache).  Placed next to the download handler, so no other middleware (redirects, retries)
    nor any callback sees such a response."""

    def process_response(self, request: Request, response: Response, spider=None) -> Response:
        ip = response.ip_address
        if ip is not None and not self.allowed(str(ip)):
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


ROBOTS_MAX_BYTES = 500 * 1024  # RFC 9309 2.5: parse at least 500 KiB; Google's limit too.  The rest is not read.


class _Unreachable:
    """The rules of a host whose robots.txt answered 5xx or could not be fetched: complete disallow
    (RFC 9309 2.3.1.4), for the rest of this crawl; its pages stay unfinished, so the next run asks again."""

    def __init__(self, why: str):
        self.why = why

    def allowed(self, url: str, user_agent) -> bool:
        return False


class CountingRobotsTxtMiddleware(RobotsTxtBase):
    """Scrapy's robots.txt middleware, but a refusal carries `reasons.ROBOTS_DISALLOWED` (or `ROBOTS_UNREACHABLE`)
    to the errback, a host whose robots.txt is already parsed is checked synchronously (no coroutine per request),
    RFC 9309's status rules apply (4xx: no rules; 5xx, 429, timeouts and connection errors: disallow everything;
    only the first 500 KiB are parsed), and the source's `ignore_robots` hosts (the operator's own sites) are not
    checked, each request counted."""

    def __init__(self, crawler):
        super().__init__(crawler)
        self.ignored_hosts = frozenset(crawler.settings.getlist("MMPIPE_IGNORE_ROBOTS"))
        for host in sorted(self.ignored_hosts):
            logger.warning("robots.txt of %s is NOT obeyed: the source's ignore_robots names it as the operator's "
                           "own site", host)

    def process_request(self, request: Request, spider=None):
        if request.meta.get("dont_obey_robotstxt") or request.url.startswith(("data:", "file:")):
            return self._sitemaps_response(request) if request.meta.get("mm_robots_sitemaps") else None
        parts = urlparse_cached(request)
        if self.ignored_hosts and (parts.hostname or "") in self.ignored_hosts:
            self.stats.inc_value("mmpipe/robots/ignored")
            return None
        parser = self.cached_parser(parts.netloc)
        if parser is None:  # robots.txt could not be fetched for a policy reason: the request meets it itself
            return None
        if parser is not MISSING and not isinstance(parser, Deferred):
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
        if isinstance(rp, _Unreachable):
            raise PolicyDrop(R.ROBOTS_UNREACHABLE, f"{request.url}: the robots.txt of its host is unreachable "
                                                   f"({rp.why}), so the host is disallowed until it can be fetched")
        try:
            super().process_request_2(rp, request)
        except IgnoreRequest as exc:
            raise PolicyDrop(R.ROBOTS_DISALLOWED, f"{request.url} is disallowed by robots.txt") from exc

    def robots_response(self, response: Response, netloc: str) -> Response | None:
        if response.status >= 500 or response.status == 429:  # 429 too, as Google reads it: "come back later"
            self.stats.inc_value(f"robotstxt/response_status_count/{response.status}")
            self._unreachable(netloc, f"HTTP {response.status}")
            return None
        if response.status >= 400:  # unavailable (RFC 9309 2.3.1.3): no rules, whatever the error page says
            return response.replace(body=b"")
        if len(response.body) > ROBOTS_MAX_BYTES:
            head = response.body[:ROBOTS_MAX_BYTES]
            self.stats.inc_value("mmpipe/robots/truncated")
            return response.replace(body=head[:head.rfind(b"\n") + 1] or head)
        return response

    def robots_failed(self, exc: Exception, netloc: str) -> bool:
        """A policy refusal (address, blocklist) or a redirect chain past the limit (RFC 9309 2.3.1.2: may be
        taken as unavailable) leave the host without rules, as in Scrapy; any other failure is unreachable."""
        if isinstance(exc, PolicyDrop) or "max redirections" in str(exc).lower():
            return True
        self.stats.inc_value(f"robotstxt/exception_count/{type(exc)}")
        self._unreachable(netloc, error_kind(exc))
        return False

    def _unreachable(self, netloc: str, why: str) -> None:
        logger.warning("robots.txt of %s is unreachable (%s): the host is disallowed for this crawl "
                       "(RFC 9309 2.3.1.4)", netloc, why)
        self.stats.inc_value("mmpipe/robots/unreachable")
        rules = _Unreachable(why)
        waiting = self.replace_parser(netloc, rules)
        if isinstance(waiting, Deferred):
            waiting.callback(rules)


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
        if tdmrep_reserved(rules, urlparse_cached(request).path):
            raise PolicyDrop(R.OPT_OUT_TDMREP, f"{request.url}: TDM rights reserved by tdmrep.json")

    def process_response(self, request: Request, response: Response, spider=None) -> Response:
        """Discovery documents with the header are refused here; pages and images are judged by the spider,
        which knows how many (page, image) pairs the refusal drops."""
        if request.meta.get("mm_kind") in ("discovery", "listing", "api"):
            reason = document_opt_out(response.headers)
            if reason is not None:
                raise PolicyDrop(reason, f"{request.url}: tdm-reservation header")
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


class HostBackoff(IgnoreRequest):
    """A request to a host that asked for a longer wait than `max_retry_after`: not sent until that time has
    passed.  Not an error of the page or image: it stays unfinished, so the next run fetches it."""


class BackoffMiddleware:
    """429/503: wait `Retry-After` (or an exponential backoff) before the same host gets any new request, then
    retry; give up the URL after `backoff_retries`.  A host that asks for more than `max_retry_after` seconds is
    given up until the time it asked for (for the rest of the crawl when that is later): none of its requests is
    sent meanwhile, each one counted as `backoff.skipped`."""

    def __init__(self, crawler):
        s = crawler.settings
        self.crawler, self.stats = crawler, crawler.stats
        self.max_tries = s.getint("MMPIPE_BACKOFF_RETRIES", 3)
        self.base = s.getfloat("MMPIPE_BACKOFF_BASE", 1.0)
        self.max_wait = s.getfloat("MMPIPE_MAX_RETRY_AFTER", 120.0)
        self.not_before: dict[str, float] = {}
        self.given_up: dict[str, float] = {}  # host -> monotonic time it asked us to stay away until

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_request(self, request: Request, spider=None):
        if not self.not_before and not self.given_up:
            return None
        host = urlparse_cached(request).netloc
        if self.given_up.get(host, 0.0) > time.monotonic():
            self.stats.inc_value("mmpipe/backoff/skipped")
            raise HostBackoff(f"{request.url}: {host} asked for a longer Retry-After than max_retry_after "
                              f"({self.max_wait:g} s); not asked again before then")
        wait = self.not_before.get(host, 0.0) - time.monotonic()
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
        host = urlparse_cached(request).netloc
        if wait > self.max_wait:
            self.given_up[host] = max(self.given_up.get(host, 0.0), time.monotonic() + wait)
            self.stats.inc_value("mmpipe/backoff/gave_up_host")
            logger.warning("%s %s asks for Retry-After %.0f s (> max_retry_after %g s): no more requests to it "
                           "before then", response.status, host, wait, self.max_wait)
            return response
        if tries >= self.max_tries:
            self.stats.inc_value("mmpipe/backoff/gave_up")
            return response
        self.not_before[host] = max(self.not_before.get(host, 0.0), time.monotonic() + wait)
        self.stats.inc_value(f"mmpipe/backoff/{response.status}")
        logger.info("%s %s: waiting %.1fs before retrying %s", response.status, host, wait, request.url)
        retry = request.replace(dont_filter=True)
        retry.meta["mm_backoff"] = tries + 1
        return retry
