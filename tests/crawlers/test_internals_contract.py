"""Contracts of `crawlers.internals`: what each trick relies on in Scrapy, Twisted and CPython, asserted so that a
release that changes it fails here, loudly, instead of silently slowing or breaking the crawl.

When one fails after an upgrade: switch the trick off (`MMPIPE_INTERNALS_OFF=name`) to keep crawling, then adapt
the trick to the new release (crawlers/README.md, "Upgrading Scrapy or Pillow").  These tests read private
attributes on purpose: they are the quarantine module's tests.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from scrapy import Request
from scrapy.core.downloader.handlers._aiohttp import AiohttpDownloadHandler
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.settings import default_settings
from scrapy.utils.test import get_crawler

from crawlers import internals
from crawlers.transport import AiohttpHandler, ReactorResolver

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("internals_probe.py")


def _params(fn) -> list[str]:
    return list(inspect.signature(fn).parameters)


# --- safe_url ----------------------------------------------------------------------------------------------
def test_safe_url_request_url_is_set_through_set_url_into_url():
    calls = []

    class Probe(Request):
        def _set_url(self, url):
            calls.append(url)
            super()._set_url(url)

    req = Probe("http://a.com/x")
    assert calls == ["http://a.com/x"], "Request.__init__ must set its URL through _set_url"
    assert req.replace(url="http://a.com/y").url == "http://a.com/y" and calls[-1] == "http://a.com/y", \
        "Request.replace must set the new URL through _set_url"
    assert req._url == req.url, "Request.url must read Request._url"
    fast = internals.SafeUrlRequest("http://a.com/x")
    assert "_set_url" in vars(internals.SafeUrlRequest) and fast.url == "http://a.com/x"


# --- aiohttp_session ---------------------------------------------------------------------------------------
def test_aiohttp_handler_skipping_the_parents_init_misses_nothing():
    """Our handler skips `AiohttpDownloadHandler.__init__`: it must set exactly the attributes that one sets, from
    the attributes `BaseStreamingDownloadHandler.__init__` sets, and use our resolver."""
    crawler = get_crawler(settings_dict={"TELNETCONSOLE_ENABLED": False})

    async def build():
        theirs, ours = AiohttpDownloadHandler(crawler), AiohttpHandler(crawler)
        try:
            return set(vars(theirs)), set(vars(ours)), ours._session.connector._resolver
        finally:
            await theirs._session.close()
            await ours._session.close()

    theirs, ours, resolver = asyncio.run(build())
    assert ours == theirs, f"attributes differ: {sorted(theirs ^ ours)}"
    assert {"_bind_address", "_pool_size_total", "_pool_size_per_host", "_ssl_context", "_session"} <= ours
    assert isinstance(resolver, ReactorResolver)
    assert _params(internals._make_ssl_context) == ["settings"]
    assert AiohttpDownloadHandler.lazy is not None and hasattr(AiohttpDownloadHandler, "experimental")


# --- no_tunnel_retry ---------------------------------------------------------------------------------------
def test_tunnel_error_is_named_in_retry_exceptions_and_only_twisteds_client_raises_it():
    assert internals._TUNNEL_ERROR in default_settings.RETRY_EXCEPTIONS
    import scrapy.core.downloader.handlers._aiohttp as aio

    assert "TunnelError" not in inspect.getsource(aio)
    kept = internals.retry_exceptions_for_aiohttp()
    assert kept == [e for e in default_settings.RETRY_EXCEPTIONS if e != internals._TUNNEL_ERROR] and len(kept) > 3


# --- robots_fast_path and the RFC 9309 hooks ---------------------------------------------------------------
def test_robots_middleware_private_hooks_keep_their_shape():
    assert _params(RobotsTxtMiddleware._parse_robots) == ["self", "response", "netloc", "request"]
    assert _params(RobotsTxtMiddleware._robots_error) == ["self", "exc", "netloc"]
    assert _params(RobotsTxtMiddleware.process_request_2) == ["self", "rp", "request"]
    assert inspect.iscoroutinefunction(RobotsTxtMiddleware._parse_robots)
    source = inspect.getsource(RobotsTxtMiddleware.robot_parser)
    assert "self._parse_robots(" in source and "self._robots_error(" in source, \
        "robot_parser must still hand the response / failure to _parse_robots / _robots_error"
    mw = RobotsTxtMiddleware(get_crawler(settings_dict={"ROBOTSTXT_OBEY": True}))
    assert mw._parsers == {} and mw._stats is mw.crawler.stats


# --- hide_numpy, gc_tune -----------------------------------------------------------------------------------
def test_pyarrow_works_without_numpy_once_hidden_and_the_gc_is_tuned():
    code = ("import sys; from crawlers import internals; assert internals.hide_unused_modules(); "
            "import pyarrow as pa, pyarrow.parquet, io; "
            "t = pa.table({'a': pa.array([1, 2]), 'b': pa.array([b'x', None])}); "
            "buf = io.BytesIO(); pyarrow.parquet.write_table(t, buf); "
            "assert 'numpy' not in sys.modules and 'pandas' not in sys.modules, 'pyarrow imported numpy/pandas'; "
            "import gc; internals.tune_gc(); assert gc.get_threshold()[0] == internals.GC_YOUNG; "
            "assert gc.get_freeze_count() > 0; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


# --- idle_nudge, drain_slots, quiet_root_logger, robots parsers: inside a running engine ---------------------
class _Site(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server interface
        body = b"User-agent: *\nAllow: /\n" if self.path == "/robots.txt" else b"<html><body>x</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain" if self.path == "/robots.txt" else "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        return None


@pytest.fixture
def site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _probe(base: str, off: str = "") -> dict:
    env = {**os.environ, internals.OFF_ENV: off}
    out = subprocess.run([sys.executable, str(PROBE), base], capture_output=True, text=True, cwd=REPO, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_running_engine_has_what_the_tricks_use(site):
    found = _probe(site)
    assert found["nextcall"] == "CallLaterOnce", "engine._slot.nextcall is what nudge_engine schedules"
    assert found["close_after_handled_s"] < 2.0, \
        f"nudging the engine must close an idle spider at once, not at its heartbeat ({found})"
    assert found["slot_queue_before_drain"] == 3 and found["drained"] == 3, found
    assert found["drain_failures"] == [f"drained {site}/q{i}" for i in (1, 2, 3)], found
    assert found["robots_parsers"] == "dict" and found["robots_parser_allowed"], found
    assert found["root_level_at_start"] == "INFO", "quiet_root_logger sets the root logger at engine start"


def test_switched_off_tricks_fall_back_to_scrapys_behaviour(site):
    """With its switch off, the idle nudge is not made (the spider closes at the engine's heartbeat) and nothing
    is drained: this is what the contract above guards against a release bringing back silently."""
    found = _probe(site, off="idle_nudge,quiet_root_logger")
    assert found["close_after_handled_s"] > 2.0, found
    assert found["root_level_at_start"] == "NOTSET"


def test_unknown_switch_names_fail_loudly():
    with pytest.raises(ValueError, match="unknown trick"):
        internals._switches("safe_url,no_such_trick")
    assert internals._switches("gc_tune") == {n: n != "gc_tune" for n in internals.SWITCHES}


def test_private_library_state_is_touched_only_in_internals():
    """`._name` on anything but our own attributes and methods appears in `crawlers/internals.py` only."""
    files = subprocess.run(["git", "ls-files", ":(glob)crawlers/*.py", ":(glob)crawlers/spiders/*.py"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    texts = {f: (REPO / f).read_text() for f in files}
    # our own names: defined by def/class, or assigned (not merely read) on self or at module level
    ours = {name for text in texts.values()
            for match in re.findall(r"(?:def |class )(_[a-z]\w*)|self\.(_[a-z]\w*) *=(?!=)|^(_[a-z]\w*) *[:=]", text,
                                    re.M) for name in match if name}
    found = [f"{f}: {m.group(0)}" for f, text in texts.items() if f != "crawlers/internals.py"
             for m in re.finditer(r"[\w)\]]\.(_[a-z]\w*)", text) if m.group(1) not in ours]
    found += [f"{f}: {m.group(0)}" for f, text in texts.items() if f != "crawlers/internals.py"
              for m in re.finditer(r"^from (?:scrapy|twisted)\S* import .*\b_\w+", text, re.M)]
    found += [f"{f}: {word}" for f, text in texts.items() if f != "crawlers/internals.py"
              for word in ("meta_path", "gc.", "logging.root", "nextcall", "downloader.slots")
              if word in text]
    assert found == [], f"private Scrapy/Twisted/CPython state outside crawlers/internals.py: {found}"
