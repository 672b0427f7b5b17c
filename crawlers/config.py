"""Typed configuration of the crawl stage: one `CrawlConfig` holding one `SourceConfig` per source.

The same objects are built from YAML (`CrawlConfig.from_yaml`), by the CLI, by the flows and by the tests, and are
handed to each source's Scrapy subprocess as JSON, so every field must survive a JSON round trip.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crawlers import policy
from data_schemas import SOURCE_KINDS, storage

TEASER_MODES = ("drop", "emit")
TRANSPORTS = ("aiohttp", "twisted")  # the HTTP client under Scrapy's downloader (crawlers/transport.py)
LIST_FORMATS = ("parquet", "csv", "tsv", "jsonl", "txt")  # kind: urls inputs, .gz or not (crawlers/urllist.py)
DEFAULT_USER_AGENT = "mmpipe/0.1 (+https://github.com/mmpipe/mmpipe)"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ConfigError(ValueError):
    """A crawl configuration is invalid; the message names the file, the source and the field."""


@dataclass
class SourceConfig:
    """One crawl source.  Fields that do not apply to a kind are ignored by that kind's spider."""

    name: str
    kind: str  # news | feed | mastodon | bluesky | urls | warc
    # news / feed
    feeds: list[str] = field(default_factory=list)  # RSS/Atom URLs (news, feed); custom feed at:// URIs (bluesky)
    sitemaps: list[str] = field(default_factory=list)  # sitemap or sitemap-index URLs (news)
    start_urls: list[str] = field(default_factory=list)  # home/section pages to follow links from (news)
    follow_links: bool = True  # follow same-site links from start_urls
    max_depth: int = 2  # link depth from start_urls (start page = 0)
    allowed_domains: list[str] = field(default_factory=list)  # default: the hosts of the configured URLs
    article_pattern: str | None = None  # regex on the URL path: which followed links are articles
    page_text: bool = True  # also record the page title and nearest paragraph (origins title/context)
    teasers: str = "drop"  # pictures that link to another page: "drop" (counted as teaser_image) or "emit" (RAW
    # rows with role "teaser", page_url the linked page, candidates the teaser's own text)
    sitemaps_from_robots: bool = True  # no `sitemaps`: crawl those the robots.txt of the feed/start hosts lists
    # robots.txt is always obeyed, except for these hosts of this source's own URLs, named by an operator who runs
    # them (their own sites); logged as a warning and listed in the crawl summary (crawlers/policy.py)
    ignore_robots: list[str] = field(default_factory=list)
    # mastodon
    instance: str | None = None  # base URL, e.g. https://mastodon.social
    hashtags: list[str] = field(default_factory=list)
    local_timeline: bool = False
    include_noindex: bool = False  # accounts with `noindex` are skipped unless this is set
    video_previews: bool = False  # gifv/video attachments with a description give their preview still
    # bluesky
    appview: str = "https://public.api.bsky.app"
    actors: list[str] = field(default_factory=list)  # handles or DIDs (author feeds)
    search_queries: list[str] = field(default_factory=list)
    web_base: str = "https://bsky.app"  # where post pages live: <web_base>/profile/<handle>/post/<rkey>
    # social (both)
    include_sensitive: bool = False  # media marked sensitive is skipped unless this is set
    page_limit: int = 40  # items per API page
    # limits (None = unlimited)
    max_pages: int | None = None  # article pages / API pages fetched
    max_images: int | None = None  # images fetched
    max_seconds: float | None = None  # wall-clock time of the source
    # discovery bounds, on by default: a hostile or broken server must not hold a crawl forever (crawlers/README.md)
    max_discovery: int | None = 10_000  # discovery documents: feeds, sitemaps, robots.txt reads, listing, API pages
    max_sitemap_depth: int | None = 3  # nested sitemap indexes followed below a configured sitemap (protocol: 1)
    max_api_pages: int | None = 1000  # social API pages in all (40,000 Mastodon statuses at 40 a page)
    max_stale_pages: int | None = 3  # a timeline stops after this many pages in a row that bring no new post
    processes: int = 1  # Scrapy processes sharing this source: pages/posts split by URL hash (one CPU core each)
    license: str | None = None  # recorded in every row of this source when the site states one
    # urls (img2dataset's URL lists) / warc (Common Crawl WARC/WAT files): local files or globs
    paths: list[str] = field(default_factory=list)
    input_format: str | None = None  # urls: parquet | csv | tsv | jsonl (.gz or not); default: by file extension
    url_col: str = "url"  # urls: img2dataset's column names
    caption_col: str | None = "caption"  # urls: null for a list without captions
    page_col: str | None = None  # urls: a column naming the page of the image (RAW page_url; "" without one)
    html: bool = False  # warc: also read WARC response records' HTML through the news page objects

    def validate(self) -> None:
        where = f"source '{self.name}'"
        if not _NAME_RE.match(self.name or ""):
            raise ConfigError(f"{where}: name must be 1-64 letters, digits, '_', '.', '-'")
        if self.kind not in SOURCE_KINDS:
            raise ConfigError(f"{where}: kind '{self.kind}' is not one of {SOURCE_KINDS}")
        if self.kind == "news" and not (self.feeds or self.sitemaps or self.start_urls):
            raise ConfigError(f"{where}: a news source needs feeds, sitemaps or start_urls")
        if self.kind == "feed" and not self.feeds:
            raise ConfigError(f"{where}: a feed source needs feeds")
        if self.kind == "mastodon" and not (self.instance and (self.hashtags or self.local_timeline)):
            raise ConfigError(f"{where}: a mastodon source needs instance and hashtags or local_timeline: true")
        if self.kind == "bluesky" and not (self.actors or self.search_queries or self.feeds):
            raise ConfigError(f"{where}: a bluesky source needs actors, search_queries or feeds")
        if self.kind in ("urls", "warc") and not self.paths:
            raise ConfigError(f"{where}: a {self.kind} source needs paths (files or globs)")
        if self.input_format is not None and self.input_format not in LIST_FORMATS:
            raise ConfigError(f"{where}: input_format must be one of {LIST_FORMATS}, not {self.input_format!r}")
        if self.teasers not in TEASER_MODES:
            raise ConfigError(f"{where}: teasers must be one of {TEASER_MODES}, not {self.teasers!r}")
        if self.processes < 1:
            raise ConfigError(f"{where}: processes must be >= 1")
        for limit in ("max_pages", "max_images", "max_discovery", "max_sitemap_depth", "max_api_pages",
                      "max_stale_pages"):
            value = getattr(self, limit)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ConfigError(f"{where}: {limit} must be a whole number >= 0 or null (no limit), got {value!r}")
        for problem in policy.ignore_robots_problems(self):
            raise ConfigError(f"{where}: {problem}")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ConfigError(f"{where}: max_seconds must be > 0")
        if self.article_pattern:
            try:
                re.compile(self.article_pattern)
            except re.error as exc:
                raise ConfigError(f"{where}: article_pattern is not a valid regex ({exc})") from exc


@dataclass
class CrawlConfig:
    sources: list[SourceConfig]
    out: Path | str  # a local directory or a URL (s3://...; `data_schemas.storage`): RAW files are published there
    allow_private: bool = False  # fetch private/loopback/link-local addresses (the demo and tests need it)
    private_networks: list[str] = field(default_factory=list)  # or only these networks, e.g. [127.0.0.1/32]
    user_agent: str = DEFAULT_USER_AGENT
    concurrency: int = 32  # CONCURRENT_REQUESTS of each source process
    per_domain_concurrency: int = 8  # CONCURRENT_REQUESTS_PER_DOMAIN
    autothrottle: bool = True  # AutoThrottle (off in benchmark mode)
    autothrottle_target: float = 4.0  # AUTOTHROTTLE_TARGET_CONCURRENCY
    download_delay: float = 0.0  # minimum delay between requests to one domain
    download_timeout: float = 30.0
    max_image_bytes: int = 20 * 1024 * 1024  # per image (DOWNLOAD_MAXSIZE in request meta)
    max_page_bytes: int = 10 * 1024 * 1024  # per page / feed / API response
    retry_times: int = 2  # for timeouts, connection errors, 5xx
    backoff_retries: int = 3  # for 429 / 503
    backoff_base: float = 1.0  # seconds; doubled per attempt when no Retry-After is given
    max_retry_after: float = 120.0  # a longer Retry-After gives up on the URL (http_error)
    rows_per_file: int = 1000  # rolling Parquet files: a new file every N rows ...
    bytes_per_file: int = 256 * 1024 * 1024  # ... or every N bytes of image data
    flush_seconds: float = 60.0  # ... or every N seconds, so a killed crawl loses little work
    blocklist: Path | None = None  # takedown blocklist (file or dataset directory)
    state_dir: Path | None = None  # seen-URL store, logs, per-source summaries; default <out>/.state, for a URL
    # out <local_out>/.state: the crawl state and its RAW spill stay local (`local_out`), only RAW files are published
    incremental: bool = True  # skip pages already crawled into this out dir
    parallel_sources: int = 2  # source processes run at once by `crawl()`
    image_cache_bytes: int = 256 * 1024 * 1024  # in-memory cache of fetched images shared by several pages
    transport: str = "aiohttp"  # HTTP client under Scrapy's downloader: aiohttp (faster) or twisted (Scrapy's default)
    benchmark: bool = False  # loopback benchmark: no AutoThrottle, high concurrency
    log_level: str = "INFO"
    # extra Scrapy settings, applied last, except those the safety policy protects (crawlers/policy.py)
    scrapy_settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out = storage.location(self.out)
        self.state_dir = Path(self.state_dir) if self.state_dir else self.local_out / ".state"
        self.blocklist = Path(self.blocklist) if self.blocklist else None
        self.sources = [s if isinstance(s, SourceConfig) else _source_from_dict(s) for s in self.sources]

    @property
    def local_out(self) -> Path:
        """Where the crawl writes: ``out`` itself, or for a URL ``out`` a local spill directory named after it
        (``$MMPIPE_CRAWL_CACHE``, default the system temporary directory, ``/mmpipe-crawls/<hash>``), stable so a
        resumed crawl on this machine finds its state."""
        if not storage.is_url(self.out):
            return self.out
        base = Path(os.environ.get("MMPIPE_CRAWL_CACHE") or tempfile.gettempdir()) / "mmpipe-crawls"
        return base / uuid.uuid5(uuid.NAMESPACE_URL, self.out).hex

    def validate(self) -> None:
        names = [s.name for s in self.sources]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"source names must be unique; repeated: {', '.join(dup)}")
        for s in self.sources:
            s.validate()
        if self.rows_per_file < 1 or self.bytes_per_file < 1:
            raise ConfigError("rows_per_file and bytes_per_file must be >= 1")
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"transport must be one of {TRANSPORTS}, got {self.transport!r}")
        if not isinstance(self.scrapy_settings, dict) or not all(isinstance(k, str) for k in self.scrapy_settings):
            raise ConfigError("scrapy_settings must be a mapping of Scrapy setting names to values")
        problems = policy.scrapy_settings_problems(self.scrapy_settings) + policy.network_problems(
            self.private_networks)
        if problems:
            raise ConfigError("; ".join(problems))

    def source(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        raise ConfigError(f"no source named '{name}'; configured: {', '.join(s.name for s in self.sources)}")

    def select(self, names: list[str] | None) -> CrawlConfig:
        """A copy with only the named sources (all when `names` is empty)."""
        if not names:
            return self
        return dataclasses.replace(self, sources=[self.source(n) for n in names])

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("out", "state_dir", "blocklist"):
            data[key] = str(data[key]) if data[key] is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any) -> CrawlConfig:
        known = set(cls.__dataclass_fields__)
        merged = {**data, **{k: v for k, v in overrides.items() if v is not None}}
        removed = policy.removed_field_problems(merged)
        if removed:
            raise ConfigError("; ".join(removed))
        unknown = sorted(set(merged) - known)
        if unknown:
            raise ConfigError(f"unknown crawl setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if "out" not in merged:
            raise ConfigError("no output directory: set `out:` in the config or pass --out")
        config = cls(**merged)
        config.validate()
        return config

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> CrawlConfig:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: config file not found") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
        if not isinstance(data, dict) or not isinstance(data.get("sources"), list):
            raise ConfigError(f"{path}: expected a mapping with a `sources:` list")
        try:
            return cls.from_dict(data, **overrides)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        except TypeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc


def _source_from_dict(data: dict[str, Any]) -> SourceConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"a source must be a mapping, got {data!r}")
    known = set(SourceConfig.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    name = data.get("name", "?")
    if unknown:
        raise ConfigError(f"source '{name}': unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for req in ("name", "kind"):
        if req not in data:
            raise ConfigError(f"source '{name}': `{req}` is required")
    return SourceConfig(**data)


DEMO_TAGS = ("nature", "city", "art")
DEMO_BSKY_ACTORS = ("alice.bsky.social", "bob.bsky.social", "chen.bsky.social", "dana.bsky.social")


def demo_sources(base_url: str, *, tags: tuple[str, ...] = DEMO_TAGS,
                 actors: tuple[str, ...] = DEMO_BSKY_ACTORS) -> list[SourceConfig]:
    """The sources that crawl the demo site (crawlers.demo) completely: news through its feeds, sitemap index
    and home page; Mastodon hashtag and local timelines; Bluesky author feeds and a search.

    The demo's ground truth lists figcaption/jsonld/alt/og_image_alt (and social_alt/context for posts) as the
    candidates of a news image, so the page-text candidates (title, nearest paragraph) are off here.
    `tags` / `actors` default to the demo's fixed `site.mastodon_tags` / `site.bluesky_actors`.
    """
    base = base_url.rstrip("/")
    return [
        SourceConfig(name="demo-news", kind="news", feeds=[f"{base}/feeds/rss.xml", f"{base}/feeds/atom.xml"],
                     sitemaps=[f"{base}/sitemap.xml"], start_urls=[f"{base}/"], max_depth=3, page_text=False),
        SourceConfig(name="demo-mastodon", kind="mastodon", instance=base, hashtags=list(tags),
                     local_timeline=True),
        SourceConfig(name="demo-bluesky", kind="bluesky", appview=base, actors=list(actors),
                     search_queries=["nature"], web_base=f"{base}/bsky"),
    ]
