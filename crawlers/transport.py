"""The HTTP transport under Scrapy's downloader: aiohttp (default) or Twisted's HTTP/1.1 client.

Why aiohttp: per request, Twisted's client parses status lines, headers and chunks in Python; aiohttp does it in
C.  On the crawl benchmark a bare Scrapy spider fetches the same images faster through Scrapy's own
(experimental) aiohttp handler, and our crawl gets faster by about the same CPU per request (BENCHMARKS.md).
Everything above the handler stays Scrapy's: scheduler, middlewares (robots.txt, TDMRep, backoff, retries, address
checks), stats and JOBDIR.  `transport: twisted` keeps Scrapy's default handler.

Either way the connection uses the addresses the address check saw: aiohttp resolves names through the reactor's
resolver (TWISTED_DNS_RESOLVER, cached per name), the same one `crawlers.fetch.resolve_all` asks before a request.
"""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult

from crawlers.config import TRANSPORTS
from crawlers.fetch import resolve_all
from crawlers.internals import AiohttpHandlerBase, aiohttp_usable
from crawlers.spiders.deadline import DeadlineMixin

_HERE = "crawlers.transport"


class ReactorResolver(AbstractResolver):
    """aiohttp name resolution through the reactor's resolver, so the check and the connection agree."""

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = []
        for ip in await resolve_all(host):
            fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
            if family in (socket.AF_UNSPEC, fam):
                found.append(ResolveResult(hostname=host, host=ip, port=port, family=fam, proto=0,
                                           flags=socket.AI_NUMERICHOST))
        if not found:
            raise OSError(socket.EAI_NONAME, f"DNS lookup failed: {host} has no address")
        return found

    async def close(self) -> None:
        return None


class AiohttpHandler(AiohttpHandlerBase):
    """Scrapy's aiohttp handler (`crawlers.internals.AiohttpHandlerBase`) with the reactor's resolver."""

    def make_resolver(self) -> ReactorResolver:
        return ReactorResolver()


class DeadlineAiohttpHandler(DeadlineMixin, AiohttpHandler):
    """aiohttp downloads that end by the source's `max_seconds`."""


def __getattr__(name: str):
    """`DeadlineTwistedHandler`, built when Scrapy loads it: importing Scrapy's Twisted handler adds to every
    process's start-up (its TLS context factory module, BENCHMARKS.md), which an aiohttp crawl never needs."""
    if name != "DeadlineTwistedHandler":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler

    class DeadlineTwistedHandler(DeadlineMixin, HTTP11DownloadHandler):
        """Twisted downloads that end by the source's `max_seconds`."""

    globals()[name] = DeadlineTwistedHandler
    return DeadlineTwistedHandler


def download_handlers(transport: str, *, deadline: bool) -> dict[str, str]:
    """DOWNLOAD_HANDLERS for http(s); empty for Scrapy's default (Twisted without a deadline)."""
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {TRANSPORTS}, got {transport!r}")
    if transport == "aiohttp" and not aiohttp_usable():  # its trick is switched off (crawlers/internals.py)
        transport = "twisted"
    if transport == "twisted" and not deadline:
        return {}
    name = {("aiohttp", False): "AiohttpHandler", ("aiohttp", True): "DeadlineAiohttpHandler",
            ("twisted", True): "DeadlineTwistedHandler"}[(transport, deadline)]
    return {"http": f"{_HERE}.{name}", "https": f"{_HERE}.{name}"}
