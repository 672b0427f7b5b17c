"""Scrapy settings of one source process, derived from the typed `CrawlConfig`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crawlers import internals, policy
from crawlers.config import ConfigError, CrawlConfig, SourceConfig
from crawlers.transport import download_handlers

_MW = "crawlers.middlewares"


def _politeness(config: CrawlConfig) -> dict[str, Any]:
    """Who we say we are, how fast and how often we ask, and how long we wait: robots.txt always obeyed."""
    return {
        "BOT_NAME": "mmpipe",
        "USER_AGENT": config.user_agent,
        "ROBOTSTXT_OBEY": True,  # always (crawlers/policy.py); a source's own hosts may be in ignore_robots
        "ROBOTSTXT_USER_AGENT": config.user_agent.split("/", 1)[0] or "mmpipe",
        "CONCURRENT_REQUESTS": config.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": config.per_domain_concurrency,
        "DOWNLOAD_DELAY": config.download_delay,
        "AUTOTHROTTLE_ENABLED": config.autothrottle,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": config.autothrottle_target,
        "AUTOTHROTTLE_START_DELAY": max(config.download_delay, 0.25),
        "AUTOTHROTTLE_MAX_DELAY": 30.0,
        "DOWNLOAD_TIMEOUT": config.download_timeout,
        "DOWNLOAD_MAXSIZE": config.max_page_bytes,
        "DOWNLOAD_WARNSIZE": 0,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": config.retry_times,
        "RETRY_HTTP_CODES": [500, 502, 504, 522, 524, 408],  # 429/503 go through BackoffMiddleware
        "REDIRECT_ENABLED": True,
        "COOKIES_ENABLED": False,
    }


def _engine(config: CrawlConfig) -> dict[str, Any]:
    """The Scrapy engine and its logging, with what a crawl that stores images needs off."""
    return {
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        "DNSCACHE_ENABLED": True,
        # A and AAAA, cached per name: the address check sees every address the connection may use, and the
        # connection uses the addresses the check saw (DNS_TIMEOUT does not apply to this resolver)
        "TWISTED_DNS_RESOLVER": "scrapy.resolver.CachingHostnameResolver",
        "REACTOR_THREADPOOL_MAXSIZE": 8,
        "LOG_LEVEL": config.log_level,
        "LOGSTATS_INTERVAL": 60.0,
        "MEMUSAGE_ENABLED": False,
        "HTTPCACHE_ENABLED": False,
        # callbacks return requests, never items: Scrapy's default of 100 parallel item workers per callback
        # output would create ~100 asyncio tasks for every response
        "CONCURRENT_ITEMS": 1,
        "DEPTH_LIMIT": 0,  # link depth is the spider's own (mm_depth), so feed/sitemap chains are not cut
    }


def _mmpipe_policy(config: CrawlConfig, source: SourceConfig) -> dict[str, Any]:
    """What mmpipe's own middlewares read: the address safety rule, robots exceptions, the blocklist, backoff."""
    return {
        "MMPIPE_ALLOW_PRIVATE": config.allow_private,
        "MMPIPE_PRIVATE_NETWORKS": list(config.private_networks),
        "MMPIPE_IGNORE_ROBOTS": [h.lower() for h in source.ignore_robots],
        "MMPIPE_BLOCKLIST": str(config.blocklist) if config.blocklist else None,
        "MMPIPE_BACKOFF_RETRIES": config.backoff_retries,
        "MMPIPE_BACKOFF_BASE": config.backoff_base,
        "MMPIPE_MAX_RETRY_AFTER": config.max_retry_after,
    }


def _components(config: CrawlConfig, source: SourceConfig) -> dict[str, Any]:
    """Middlewares, extensions and download handlers: ours in, steps a crawler without credentials needs not out."""
    return {
        "DOWNLOADER_MIDDLEWARES": {
            # not needed by a crawler without credentials or allowed_domains: one less step per request
            "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
            "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
            f"{_MW}.AddressSafetyMiddleware": 50,
            f"{_MW}.BlocklistMiddleware": 60,
            "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
            f"{_MW}.CountingRobotsTxtMiddleware": 100,
            f"{_MW}.TDMRepMiddleware": 110,
            f"{_MW}.BackoffMiddleware": 540,
            f"{_MW}.ConnectedAddressMiddleware": 950,  # next to the download handler: first to see a response
        },
        "SPIDER_MIDDLEWARES": {
            "scrapy.spidermiddlewares.depth.DepthMiddleware": None,  # link depth is the spider's (mm_depth)
            "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,  # a development aid
        },
        "EXTENSIONS": {"crawlers.progress.ProgressReporter": 500},
        # downloads in flight or queued at a max_seconds deadline end by then too
        "DOWNLOAD_HANDLERS": download_handlers(config.transport, deadline=source.max_seconds is not None),
    }


def scrapy_settings(config: CrawlConfig, source: SourceConfig, *, log_file: Path | None = None) -> dict[str, Any]:
    settings: dict[str, Any] = {**_politeness(config), **_engine(config), **_mmpipe_policy(config, source),
                                **_components(config, source)}
    retry_exceptions = internals.retry_exceptions_for_aiohttp() if config.transport == "aiohttp" else None
    if retry_exceptions is not None:  # only Twisted's client raises TunnelError (crawlers/internals.py)
        settings["RETRY_EXCEPTIONS"] = retry_exceptions
    if source.max_seconds is not None:
        settings["CLOSESPIDER_TIMEOUT"] = source.max_seconds
    if log_file is not None:
        settings["LOG_FILE"] = str(log_file)
        settings["LOG_FILE_APPEND"] = True
    problems = policy.scrapy_settings_problems(config.scrapy_settings)  # also when validate() was skipped
    if problems:
        raise ConfigError("; ".join(problems))
    settings.update(config.scrapy_settings)  # the config's own Scrapy settings win, within the policy
    return settings
