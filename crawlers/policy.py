"""The crawl's safety policy: the Scrapy settings and config fields that no crawl config, CLI flag or flow
parameter may change, decided here and nowhere else.

What it guards, and why each guard cannot be switched off by a setting:
- the private-address refusal (`crawlers.middlewares` AddressSafety/ConnectedAddress): lifted only by the typed,
  logged `allow_private` / `private_networks` fields, never by a Scrapy setting;
- the telnet console and RemoteControl: both run code sent over a socket; always off;
- robots.txt: always obeyed; a source may name hosts of its own URLs in `ignore_robots` (an operator's own sites),
  which is logged as a warning and listed in the crawl summary; `obey_robots` no longer exists;
- the middleware, extension, handler and pipeline registries and every other setting that names Python code to
  load, or files to write: changing them could remove any guard above or run arbitrary code;
- the settings mmpipe derives from typed fields (`MMPIPE_*`, the User-Agent): set the field instead.

`scrapy_settings` in a crawl YAML (a file on the crawling machine, the operator's) may set any other setting
(`DNS_TIMEOUT`, `TWISTED_DNS_RESOLVER`, ...).  A flow run's parameters (anyone who can start a deployment run in
the Prefect UI sets them) may not carry `scrapy_settings` at all, nor replace the takedown blocklist or the state
directory: those belong in the crawl YAML (`crawl.config_file`).  The functions return problems as text; the
callers (`CrawlConfig.validate`, `crawlers.settings`, `flows.convert`) raise their own error types.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

# Exact names: guards, code execution, code loading, file writing, and settings derived from typed fields.
PROTECTED_SETTINGS = frozenset({
    "ROBOTSTXT_OBEY", "ROBOTSTXT_USER_AGENT", "ROBOTSTXT_PARSER",
    "DOWNLOADER_MIDDLEWARES", "DOWNLOADER_MIDDLEWARES_BASE", "SPIDER_MIDDLEWARES", "SPIDER_MIDDLEWARES_BASE",
    "EXTENSIONS", "EXTENSIONS_BASE", "ITEM_PIPELINES", "ITEM_PIPELINES_BASE", "DOWNLOAD_HANDLERS",
    "DOWNLOAD_HANDLERS_BASE", "ADDONS", "SPIDER_MODULES", "SPIDER_LOADER_CLASS", "SPIDER_CONTRACTS",
    "SPIDER_CONTRACTS_BASE", "DOWNLOADER", "SCHEDULER", "SCHEDULER_PRIORITY_QUEUE", "SCHEDULER_DISK_QUEUE",
    "SCHEDULER_MEMORY_QUEUE", "SCHEDULER_START_DISK_QUEUE", "SCHEDULER_START_MEMORY_QUEUE", "DUPEFILTER_CLASS",
    "STATS_CLASS", "LOG_FORMATTER", "REQUEST_FINGERPRINTER_CLASS", "TWISTED_REACTOR", "ASYNCIO_EVENT_LOOP",
    "DNS_RESOLVER", "DOWNLOADER_CLIENTCONTEXTFACTORY", "DOWNLOADER_HTTPCLIENTFACTORY", "COMMANDS_MODULE",
    "EDITOR", "JOBDIR", "LOG_FILE", "LOG_FILE_APPEND", "FEEDS", "FILES_STORE", "IMAGES_STORE",
    "USER_AGENT", "HTTPPROXY_ENABLED", "DOWNLOAD_MAXSIZE",
})
PROTECTED_PREFIXES = ("TELNETCONSOLE_", "REMOTE_CONTROL_", "MMPIPE_", "FEED_", "HTTPCACHE_", "MEMDEBUG_",
                      "PERIODIC_LOG_", "STATSMAILER_", "MAIL_")
# Fields that no longer exist, with what to do instead.
REMOVED_FIELDS = {
    "obey_robots": "robots.txt is always obeyed; for sites you run yourself, list their hosts in the source's "
                   "`ignore_robots: [host, ...]` (logged, and listed in the crawl summary)",
    "benchmark": "there is no benchmark mode: for your own sites on a fast link set `autothrottle: false` (and "
                 "any Scrapy setting the policy allows under `scrapy_settings`)",
}
# CrawlConfig fields a flow run's parameters (`crawl.options`) may not set.
FLOW_FORBIDDEN_OPTIONS = {
    "scrapy_settings": "raw Scrapy settings belong in the crawl YAML (`crawl.config_file`), not in run parameters",
    "blocklist": "the crawl always honours the dataset's takedown blocklist; add entries with `mmpipe takedown`",
    "state_dir": "the crawl store lives beside the RAW files",
}


def protected(name: str) -> bool:
    return name in PROTECTED_SETTINGS or name.startswith(PROTECTED_PREFIXES)


def scrapy_settings_problems(settings: Mapping[str, Any]) -> list[str]:
    """Each `scrapy_settings` entry the policy forbids, with the reason and what to do instead."""
    out = []
    for name in sorted(settings):
        if name.startswith(("TELNETCONSOLE_", "REMOTE_CONTROL_")):
            out.append(f"scrapy_settings.{name}: the telnet console and RemoteControl run code sent over a socket "
                       "and stay off")
        elif name.startswith("MMPIPE_") or name in ("USER_AGENT", "ROBOTSTXT_USER_AGENT", "DOWNLOAD_MAXSIZE"):
            out.append(f"scrapy_settings.{name}: derived from the crawl config's typed fields; set the field "
                       "(allow_private, private_networks, user_agent, max_page_bytes, ...) instead")
        elif name.startswith("ROBOTSTXT_"):
            out.append(f"scrapy_settings.{name}: robots.txt is always obeyed; list your own sites in a source's "
                       "`ignore_robots`")
        elif protected(name):
            out.append(f"scrapy_settings.{name}: protected by the crawl's safety policy (it loads code, writes "
                       "files, or could switch a guard off); see crawlers/policy.py")
    return out


def removed_field_problems(data: Mapping[str, Any]) -> list[str]:
    return [f"{name}: {why}" for name, why in REMOVED_FIELDS.items() if name in data]


def flow_option_problems(options: Mapping[str, Any]) -> list[str]:
    """What a flow run's `crawl.options` may not set; the rest is checked by the crawl config itself."""
    out = [f"crawl.options.{name}: {why}" for name, why in FLOW_FORBIDDEN_OPTIONS.items() if name in options]
    return out + [f"crawl.options.{p}" for p in removed_field_problems(options)]


def network_problems(networks: Iterable[Any]) -> list[str]:
    out = []
    for net in networks or []:
        try:
            ipaddress.ip_network(str(net), strict=False)
        except ValueError:
            out.append(f"private_networks: {net!r} is not an IP network (e.g. 127.0.0.1/32 or 10.0.0.0/8)")
    return out


def source_hosts(source: Any) -> set[str]:
    """The hosts a source's own configuration names: its URLs and `allowed_domains`."""
    urls = [*source.feeds, *source.sitemaps, *source.start_urls, source.instance or "", source.appview or ""]
    hosts = {urlsplit(u).hostname for u in urls if "://" in u}
    return {h.lower() for h in hosts if h} | {d.lower() for d in source.allowed_domains}


def ignore_robots_problems(source: Any) -> list[str]:
    """`ignore_robots` may only name hosts of the source's own URLs, each one exactly: never a wildcard."""
    own = source_hosts(source)
    out = []
    for host in source.ignore_robots:
        if not isinstance(host, str) or host.lower() not in own:
            out.append(f"ignore_robots: {host!r} is not a host of this source's own URLs ({', '.join(sorted(own))})"
                       "; robots.txt may only be ignored for sites you run yourself, each named exactly")
    return out
