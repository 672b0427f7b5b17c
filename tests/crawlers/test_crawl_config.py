"""Crawl configuration: YAML loading, validation messages, JSON round trip, and the CLI's error path."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from crawlers.config import ConfigError, CrawlConfig, SourceConfig, demo_sources
from crawlers.middlewares import is_public_ip, parse_tdmrep, retry_after_seconds
from crawlers.settings import scrapy_settings
from flows.cli import app

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "sources.example.yaml"


def test_example_config_loads_and_round_trips(tmp_path):
    config = CrawlConfig.from_yaml(EXAMPLE, out=tmp_path / "raw")
    assert config.out == tmp_path / "raw" and config.state_dir == tmp_path / "raw" / ".state"
    assert {s.kind for s in config.sources} == {"news", "feed", "mastodon", "bluesky", "urls", "warc"}
    again = CrawlConfig.from_dict(config.to_dict())
    assert again == config
    assert [s.name for s in config.select(["guardian"]).sources] == ["guardian"]


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("sources: []\n", "no output directory"),
    ("out: x\nsources:\n  - {name: a, kind: blog}\n", "kind 'blog'"),
    ("out: x\nsources:\n  - {name: a, kind: news}\n", "needs feeds, sitemaps or start_urls"),
    ("out: x\nsources:\n  - {name: a, kind: news, feeds: [u], colour: red}\n", "unknown field(s) colour"),
    ("out: x\nspeed: 3\nsources:\n  - {name: a, kind: news, feeds: [u]}\n", "unknown crawl setting(s): speed"),
    ("out: x\nsources:\n  - {name: a, kind: mastodon, hashtags: [x]}\n", "needs instance"),
    ("out: x\nsources:\n  - {name: a, kind: news, feeds: [u]}\n  - {name: a, kind: news, feeds: [v]}\n", "unique"),
    ("out: x\nsources: [\n", "not valid YAML"),
    ("out: x\nsources:\n  - {name: a, kind: news, feeds: [u], max_seconds: 0}\n", "max_seconds must be > 0"),
    ("out: x\nscrapy_settings: [DNS_TIMEOUT]\nsources:\n  - {name: a, kind: news, feeds: [u]}\n", "scrapy_settings"),
])
def test_config_errors_name_the_problem(tmp_path, yaml_text, message):
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match="c.yaml") as err:
        CrawlConfig.from_yaml(path)
    assert message in str(err.value)


def test_settings_are_polite_and_safe(tmp_path):
    config = CrawlConfig(sources=demo_sources("http://127.0.0.1:1"), out=tmp_path)
    s = scrapy_settings(config, config.sources[0])
    assert s["ROBOTSTXT_OBEY"] and s["AUTOTHROTTLE_ENABLED"] and not s["COOKIES_ENABLED"]
    assert s["TELNETCONSOLE_ENABLED"] is False and s["REMOTE_CONTROL_ENABLED"] is False
    assert s["USER_AGENT"].startswith("mmpipe/") and "+https://" in s["USER_AGENT"]
    assert s["ROBOTSTXT_USER_AGENT"] == "mmpipe" and not s["MMPIPE_ALLOW_PRIVATE"]
    assert 429 not in s["RETRY_HTTP_CODES"] and 503 not in s["RETRY_HTTP_CODES"]
    bench = scrapy_settings(CrawlConfig(sources=[], out=tmp_path, benchmark=True), config.sources[0])
    assert not bench["AUTOTHROTTLE_ENABLED"]
    assert "CLOSESPIDER_TIMEOUT" not in s
    assert s["DOWNLOAD_HANDLERS"]["https"] == "crawlers.transport.AiohttpHandler"  # the default transport
    twisted = scrapy_settings(CrawlConfig(sources=[], out=tmp_path, transport="twisted"), config.sources[0])
    assert twisted["DOWNLOAD_HANDLERS"] == {}, "transport: twisted keeps Scrapy's own handler"
    with pytest.raises(ConfigError, match="transport"):
        CrawlConfig(sources=[], out=tmp_path, transport="curl").validate()
    limited = CrawlConfig(sources=[SourceConfig(name="a", kind="news", feeds=["u"], max_seconds=9.5)], out=tmp_path,
                          scrapy_settings={"DNS_TIMEOUT": 3, "COOKIES_ENABLED": True})
    s = scrapy_settings(limited, limited.sources[0])
    assert s["CLOSESPIDER_TIMEOUT"] == 9.5 and s["DOWNLOAD_HANDLERS"]["https"].endswith("DeadlineAiohttpHandler")
    assert s["DNS_TIMEOUT"] == 3 and s["COOKIES_ENABLED"], "the config's own scrapy_settings are applied last"
    assert CrawlConfig.from_dict(limited.to_dict()) == limited


def test_policy_helpers():
    assert not is_public_ip("127.0.0.1") and not is_public_ip("10.1.2.3") and not is_public_ip("169.254.169.254")
    assert not is_public_ip("::1") and not is_public_ip("::ffff:192.168.0.1") and not is_public_ip("100.64.0.1")
    assert is_public_ip("93.184.216.34")
    rules = parse_tdmrep(b'[{"location": "/news/reserved/*", "tdm-reservation": 1}, '
                         b'{"location": "/*", "tdm-reservation": 0}]')
    assert [r for p, r in rules if p.match("/news/reserved/a.html")][0] is True
    assert [r for p, r in rules if p.match("/news/world/a.html")][0] is False
    assert parse_tdmrep(b"not json") == []
    assert retry_after_seconds(b"7") == 7.0 and retry_after_seconds(None) is None
    assert 0 <= retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") < 1


def test_cli_reports_config_errors_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("out: x\nsources:\n  - {name: a, kind: blog}\n")
    result = CliRunner().invoke(app, ["crawl", "--config", str(bad)])
    assert result.exit_code == 1
    assert "kind 'blog'" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["crawl", "--config", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1 and "not found" in result.output


def test_source_processes_must_be_positive():
    with pytest.raises(ConfigError, match="processes"):
        SourceConfig(name="a", kind="news", feeds=["u"], processes=0).validate()
