"""The crawl's safety policy (crawlers/policy.py): settings no config may change, robots.txt always obeyed except for
a source's own hosts named in `ignore_robots`, and the discovery bounds documented with their defaults."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from scrapy.exceptions import IgnoreRequest

from crawlers.config import ConfigError, CrawlConfig, SourceConfig
from crawlers.fetch import error_kind
from crawlers.settings import scrapy_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "sources.example.yaml"
SOURCE = SourceConfig(name="a", kind="news", feeds=["https://news.example/rss.xml"])


@pytest.mark.parametrize("setting", [
    "TELNETCONSOLE_ENABLED", "TELNETCONSOLE_PORT", "REMOTE_CONTROL_ENABLED", "ROBOTSTXT_OBEY", "MMPIPE_ALLOW_PRIVATE",
    "MMPIPE_PRIVATE_NETWORKS", "DOWNLOADER_MIDDLEWARES", "DOWNLOADER_MIDDLEWARES_BASE", "EXTENSIONS", "ITEM_PIPELINES",
    "DOWNLOAD_HANDLERS", "ADDONS", "FEEDS", "JOBDIR", "LOG_FILE", "TWISTED_REACTOR", "SCHEDULER", "USER_AGENT",
])
def test_protected_scrapy_settings_are_refused_by_config_and_at_apply_time(tmp_path, setting):
    config = CrawlConfig(sources=[SOURCE], out=tmp_path, scrapy_settings={setting: True})
    with pytest.raises(ConfigError, match=f"scrapy_settings.{setting}"):
        config.validate()
    with pytest.raises(ConfigError, match=f"scrapy_settings.{setting}"):  # also when validate() was skipped
        scrapy_settings(config, SOURCE)


def test_unprotected_settings_still_apply_and_the_guards_stay_on(tmp_path):
    config = CrawlConfig(sources=[SOURCE], out=tmp_path, scrapy_settings={"DNS_TIMEOUT": 3, "COOKIES_ENABLED": True})
    config.validate()
    s = scrapy_settings(config, SOURCE)
    assert s["DNS_TIMEOUT"] == 3 and s["ROBOTSTXT_OBEY"] is True
    assert s["TELNETCONSOLE_ENABLED"] is False and s["REMOTE_CONTROL_ENABLED"] is False
    assert "crawlers.middlewares.AddressSafetyMiddleware" in s["DOWNLOADER_MIDDLEWARES"]


def test_obey_robots_is_gone_and_ignore_robots_only_names_the_sources_own_hosts(tmp_path):
    with pytest.raises(ConfigError, match="robots.txt is always obeyed.*ignore_robots"):
        CrawlConfig.from_dict({"sources": [dataclasses.asdict(SOURCE)], "out": str(tmp_path), "obey_robots": False})
    for hosts in (["*"], ["other.example"], ["news.example.evil"]):
        bad = dataclasses.replace(SOURCE, ignore_robots=hosts)
        with pytest.raises(ConfigError, match="ignore_robots.*not a host of this source"):
            bad.validate()
    own = dataclasses.replace(SOURCE, ignore_robots=["news.example"])
    own.validate()
    assert scrapy_settings(CrawlConfig(sources=[own], out=tmp_path), own)["MMPIPE_IGNORE_ROBOTS"] == ["news.example"]


def test_private_networks_must_be_networks(tmp_path):
    with pytest.raises(ConfigError, match="private_networks: 'localhost' is not an IP network"):
        CrawlConfig(sources=[SOURCE], out=tmp_path, private_networks=["localhost"]).validate()
    CrawlConfig(sources=[SOURCE], out=tmp_path, private_networks=["127.0.0.1/32", "::1"]).validate()


def test_discovery_bounds_have_defaults_documented_in_the_example_config():
    """Each bound is on by default, and sources.example.yaml states that default (one place: SourceConfig)."""
    text = EXAMPLE.read_text()
    for name in ("max_discovery", "max_sitemap_depth", "max_api_pages", "max_stale_pages"):
        default = SourceConfig.__dataclass_fields__[name].default
        assert isinstance(default, int) and default > 0, name
        documented = re.search(rf"#\s*{name}: ({default:_}|{default})\b", text)
        assert documented, f"{name}: {default} is not documented in {EXAMPLE.name}"
    with pytest.raises(ConfigError, match="max_api_pages must be a whole number"):
        dataclasses.replace(SOURCE, max_api_pages=-1).validate()


@pytest.mark.parametrize(("message", "kind"), [
    # HttpCompressionMiddleware cutting a gzip bomb (Scrapy 2.19's wording)
    ("Ignored response <200 http://x/> because its body (20393 B compressed, 1048577 B decompressed so far) "
     "exceeded DOWNLOAD_MAXSIZE (1048576 B) during decompression.", "too_large"),
    ("Received 1048577 bytes which is larger than download max size (1048576) in request <GET http://x/>.",
     "too_large"),
    ("max redirections reached", "too_many_redirects"),
    ("Max Redirections Reached", "too_many_redirects"),
    ("something else went wrong", "connection_error"),
])
def test_error_kinds_match_scrapys_messages_in_any_case(message, kind):
    assert error_kind(IgnoreRequest(message)) == kind
