"""`mmpipe browse` in a real browser: Playwright drives Debian's chromium against the app served by uvicorn on
127.0.0.1, over a CLEAN dataset written by the real clean stage (and a tiny real training run for the model views).
What each page shows is compared with DuckDB's own answer on the same shards.

``MMPIPE_BROWSE_SHOTS=docs/browse`` also writes a screenshot of each view there (the README's pictures).
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from pathlib import Path

import duckdb
import httpx
import psutil
import pytest
from tools_data import HOSTILE, build_clean

from data_schemas import BLOCKLIST_NAME, SCORE_PART_GLOB, Blocklist, Manifest, scores_dir
from pipeline.tools._read import open_dataset
from pipeline.tools.browse import CSP, create_app
from pipeline.tools.takedown import TAKEDOWN_LOG
from tests.tools.browse_data import EXPECTED_DROPS, write_browse_raw

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = os.environ.get("MMPIPE_BROWSE_SHOTS")

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # a declared dev dependency: missing in CI means a broken install, so fail there
    if os.environ.get("CI"):
        raise
    pytest.skip("playwright is not installed (pip install -e '.[dev]'); the browser tests need it",
                allow_module_level=True)
if not CHROMIUM.exists():
    pytest.skip(f"chromium not found at {CHROMIUM} (apt-get install chromium); the browser tests drive it",
                allow_module_level=True)


class Server:
    """uvicorn serving an app on a free loopback port, in a thread."""

    def __init__(self, app):
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, dask_address) -> Path:
    from pipeline.clean import clean
    from pipeline.config import CleanConfig

    root = tmp_path_factory.mktemp("browse")
    return Path(clean(CleanConfig(raw=write_browse_raw(root / "raw"), out=root / "ds", scheduler=dask_address,
                                  progress=False, write_rejected=True)))


@pytest.fixture(scope="module")
def search(dataset: Path, tmp_path_factory):
    """A real training run (one step of the tiny preset on 32-px crops: the model views need a model, not a
    good one) and the search the CLI builds from it (flows composes training and the browser)."""
    from flows.browse_search import run_search
    from training.config import TrainConfig
    from training.train import train

    run = train(TrainConfig(data=dataset, out=tmp_path_factory.mktemp("run") / "run", steps=1, batch_size=4,
                            num_workers=0, ckpt_every=1, image_size=32, max_text_len=16, eval_at_end=False,
                            progress=False, plot=False))
    return run_search(dataset, run, device="cpu", progress=False)


@pytest.fixture(scope="module")
def server(dataset: Path, search):
    app = create_app(dataset, search=search)
    srv = Server(app)
    yield srv
    srv.stop()
    app.state.browser.queries.close()


@pytest.fixture(scope="module")
def chromium():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1200, "height": 860})
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    yield page
    context.close()


def duck(ds: Path, sql: str, args: list | None = None) -> list[tuple]:
    """DuckDB's answer on the shards the manifest lists (``shards`` view) and the audit files (``rejected``)."""
    con = duckdb.connect()
    files = [str(f) for f in open_dataset(ds).files]
    con.execute(f"CREATE VIEW shards AS SELECT * FROM read_parquet({files!r})")
    rejected = [str(ds / n) for n in Manifest.read(ds).extra.get("rejected", [])]
    if rejected:
        con.execute(f"CREATE VIEW rejected AS SELECT * FROM read_parquet({rejected!r}, union_by_name = true)")
    return con.execute(sql, args or []).fetchall()


def shown_keys(page, selector: str = "#grid .card") -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.dataset.key)")


def images_load(page, selector: str) -> bool:
    """Every picture under ``selector`` has loaded and decoded (waits up to 15 s)."""
    page.wait_for_function("s => [...document.querySelectorAll(s)].every(i => i.complete)", arg=selector,
                           timeout=15_000)
    return page.evaluate("s => { const im = [...document.querySelectorAll(s)]; "
                         "return im.length > 0 && im.every(i => i.naturalWidth > 0); }", selector)


def shot(page, name: str) -> None:
    if SHOTS:
        from PIL import Image

        out = Path(SHOTS) / f"{name}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out))
        Image.open(out).convert("RGB").quantize(colors=128).save(out, optimize=True)  # < 200 KB for the README


def test_grid_and_filters_show_what_duckdb_finds(server, dataset, page):
    response = page.goto(server.url + "/")
    assert response.headers["content-security-policy"] == CSP
    total = duck(dataset, "SELECT count(*) FROM shards")[0][0]
    assert total == Manifest.read(dataset).rows_out == 30
    assert int(page.inner_text("#total")) == total and len(shown_keys(page)) == total
    assert images_load(page, "#grid img")
    shot(page, "grid")

    page.select_option("#f-source", "mastodon")  # a select applies itself (app.js)
    page.wait_for_url(re.compile(r"source=mastodon"))
    want = sorted(k for (k,) in duck(dataset, "SELECT key FROM shards WHERE source = 'mastodon'"))
    assert sorted(shown_keys(page)) == want and int(page.inner_text("#total")) == len(want) > 0

    page.fill("#f-min_side", "300")
    page.fill("#f-max_caption", "56")
    page.click("#apply")
    page.wait_for_url(re.compile(r"min_side=300"))
    want = sorted(k for (k,) in duck(dataset, "SELECT key FROM shards WHERE source = 'mastodon' AND "
                                     "least(width, height) >= 300 AND length(caption) <= 56"))
    assert sorted(shown_keys(page)) == want and 0 < len(want) < 10

    key = want[0]
    (page_url, crawled, credit, lang), = duck(dataset, "SELECT page_url, strftime(crawled_at, '%Y-%m-%d %H:%M'), "
                                              "credit, lang FROM shards WHERE key = ?", [key])
    card = page.locator(f'#grid .card[data-key="{key}"]')
    assert card.locator("a.page").get_attribute("href") == page_url
    assert card.locator(".crawled").inner_text() == crawled and card.locator(".lang").inner_text() == lang
    assert credit is None or card.locator(".credit").inner_text() == credit


def test_caption_search_finds_the_rows_with_the_words(server, dataset, page):
    page.goto(server.url + "/")
    page.fill("#q", "Harbour")
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r"q=Harbour"))
    want = {k for (k,) in duck(dataset, r"SELECT key FROM shards WHERE regexp_matches(lower(caption), '\bharbour\b')")}
    assert set(shown_keys(page)) == want and len(want) == 11  # 10 boats and the protest, not the dogs or bikes
    page.fill("#q", "velo rouge")  # accents folded: "vélo"
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r"q=velo"))
    assert set(shown_keys(page)) == {k for (k,) in duck(dataset, "SELECT key FROM shards WHERE source = 'bluesky'")}
    shot(page, "search")


def test_sql_box_is_read_only_and_shows_errors(server, dataset, page):
    page.goto(server.url + "/sql")
    page.fill("#sql", "SELECT source, count(*) AS n, sum(width) AS w FROM rows GROUP BY ALL ORDER BY source")
    page.click("#run")
    page.wait_for_selector("#sql-result")
    cells = page.eval_on_selector_all("#sql-result tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.innerText))")
    want = duck(dataset, "SELECT source, count(*), sum(width) FROM shards GROUP BY ALL ORDER BY source")
    assert cells == [[str(v) for v in row] for row in want]
    shot(page, "sql")
    for sql, error in [("DELETE FROM rows", "only SELECT"), ("SELECT 1; DROP VIEW rows", "one query"),
                       ("SELECT * FROM read_text('/etc/passwd')", "Permission"),
                       ("COPY (SELECT 1) TO '/tmp/x.csv'", "only SELECT"),
                       ("SELECT nope FROM rows", "nope")]:
        page.goto(server.url + "/sql")
        page.fill("#sql", sql)
        page.click("#run")
        assert error in page.inner_text("#sql-error"), sql  # shown on the page, not a 500
    page.fill("#sql", "SELECT * FROM range(1000)")
    page.click("#run")
    assert int(page.inner_text("#sql-count")) == 200  # the row limit


def test_drop_reasons_and_duplicate_clusters(server, dataset, page):
    manifest = Manifest.read(dataset)
    assert manifest.drops == EXPECTED_DROPS
    page.goto(server.url + "/reasons")
    sections = page.eval_on_selector_all("section.reason", "ss => ss.map(s => [s.dataset.reason, "
                                         "s.querySelector('.count').innerText, [...s.querySelectorAll('.card')]"
                                         ".map(c => c.dataset.id)])")
    assert {r: int(n) for r, n, _ in sections} == manifest.drops
    for reason, _, ids in sections:
        assert sorted(ids) == sorted(i for (i,) in duck(dataset, "SELECT id FROM rejected WHERE reason = ?",
                                                        [reason])) and ids, reason
    too_small = page.locator("section[data-reason=image_too_small] .card")
    assert "far too small" in too_small.locator(".caption").inner_text()
    assert images_load(page, "section[data-reason=image_too_small] img")  # from the RAW input
    shot(page, "reasons")

    page.goto(server.url + "/duplicates")
    clusters = page.eval_on_selector_all("section.cluster", "ss => ss.map(s => [s.querySelector('.kept .card')"
                                         ".dataset.key, [...s.querySelectorAll('.removed')].map(c => c.dataset.id)])")
    want = duck(dataset, "SELECT r.dup_cluster, list(r.id ORDER BY r.id) FROM rejected r JOIN shards s "
                "ON s.key = r.dup_cluster WHERE r.reason LIKE 'duplicate%' GROUP BY 1 ORDER BY 1")
    assert sorted(map(tuple, clusters)) == [(c, ids) for c, ids in want] and len(want) == 2
    assert images_load(page, "section.cluster img")
    shot(page, "duplicates")


def test_plots_render(server, page):
    page.goto(server.url + "/plots")
    assert images_load(page, ".plot img")
    names = page.eval_on_selector_all(".plot img", "is => is.map(i => [i.id, i.naturalWidth > 100])")
    assert names == [[f"plot-{n}", True] for n in ("funnel", "caption_length", "image_size", "lang", "source")]
    shot(page, "plots")


def test_text_to_image_and_more_like_this_rank_as_duckdb(server, dataset, search, page):
    parts = [str(p) for p in scores_dir(dataset, "run").glob(SCORE_PART_GLOB)]
    con = duckdb.connect()
    con.execute(f"CREATE VIEW s AS SELECT key, image_embedding::FLOAT[] AS e FROM read_parquet({parts!r})")
    phrase = "a red bicycle against a brick wall"
    text = search.encode_text(phrase).astype(float).tolist()
    want = [k for (k,) in con.execute("SELECT key FROM s ORDER BY list_cosine_similarity(e, ?::FLOAT[]) DESC, key "
                                      "LIMIT 5", [text]).fetchall()]
    page.goto(server.url + "/search")
    page.fill("#phrase", phrase)
    page.fill("#k", "5")
    page.click("#go")
    page.wait_for_url(re.compile(r"k=5"))
    assert shown_keys(page) == want
    shot(page, "text_to_image")

    page.click(f'#grid .card[data-key="{want[0]}"] a')
    page.wait_for_url(re.compile(want[0]))
    like = [k for (k,) in con.execute("SELECT key FROM s WHERE key <> $1 ORDER BY list_cosine_similarity(e, "
                                      "(SELECT e FROM s WHERE key = $1)) DESC, key LIMIT 24", [want[0]]).fetchall()]
    assert shown_keys(page, "#similar .card") == like
    shot(page, "item")


def test_hostile_caption_and_urls_render_as_text(tmp_path, page):
    """The CLEAN contract allows any caption text (the clean stage strips tags today, an older one or another
    writer may not), so this runs on the contract-built dataset whose first caption is markup."""
    built = build_clean(tmp_path / "ds")
    app = create_app(built.path)
    srv = Server(app)
    try:
        page.goto(srv.url + "/?q=protesters")
        caption = page.locator(f'.card[data-key="{built.rows[0]["key"]}"] .caption')
        assert caption.inner_text() == HOSTILE
        assert page.evaluate("document.querySelectorAll('.caption script, .caption b').length") == 0
        page.goto(srv.url + f"/item/{built.rows[0]['key']}")
        assert page.inner_text("#caption") == HOSTILE and page.dialogs == []
    finally:
        srv.stop()
        app.state.browser.queries.close()


def test_takedown_from_another_origin_is_refused(server, dataset, page):
    page.goto(server.url + "/")
    key = shown_keys(page)[0]
    page.goto(server.url + f"/item/{key}")
    token = page.get_attribute("input[name=token]", "value")
    (sha,), = duck(dataset, "SELECT sha256 FROM shards WHERE key = ?", [key])
    evil = (f"<form method=post action='{server.url}/takedown'><input name=kind value=sha256><input name=value "
            f"value={sha}><input name=token value={token}></form><script>document.forms[0].submit()</script>")
    page.route("http://evil.test/**", lambda route: route.fulfill(body=evil, content_type="text/html"))
    with page.expect_navigation(url=re.compile("/takedown")):
        page.goto("http://evil.test/")
    assert "Takedown refused" in page.inner_text("#message")  # a cross-site form post, even with the token
    cookies = {c["name"]: c["value"] for c in page.context.cookies(server.url)}
    form = {"kind": "sha256", "value": sha, "token": token}
    for headers in ({"Origin": "http://evil.test"}, {"Sec-Fetch-Site": "cross-site"}, {}):
        r = httpx.post(server.url + "/takedown", data=form, cookies=cookies, headers=headers)
        assert r.status_code == 403, headers
    r = httpx.post(server.url + "/takedown", data=dict(form, token="0" * 64), cookies=cookies,
                   headers={"Origin": server.url})
    assert r.status_code == 403 and "token" in r.text
    r = httpx.get(server.url + "/", headers={"Host": "evil.test"})  # DNS rebinding: another name for 127.0.0.1
    assert r.status_code == 400
    assert duck(dataset, "SELECT count(*) FROM shards WHERE key = ?", [key]) == [(1,)]
    assert not (dataset / TAKEDOWN_LOG).exists()


def test_takedown_from_the_page_removes_the_rows_as_the_cli_does(server, dataset, page):
    before = duck(dataset, "SELECT count(*) FROM shards")[0][0]
    (key, page_url, image_url), = duck(dataset, "SELECT key, page_url, image_url FROM shards WHERE source = "
                                       "'bluesky' ORDER BY key LIMIT 1")
    page.goto(server.url + f"/item/{key}")
    page.check("input[name=kind][value=url]")
    assert page.input_value("#takedown-value") == page_url
    page.fill("#takedown-reason", "request from the rights holder")
    assert page.is_disabled("#takedown-submit")
    page.check("#takedown-confirm")
    shot(page, "takedown")
    page.click("#takedown-submit")
    page.wait_for_load_state()
    print("DEBUG", page.url, page.content()[-1500:])
    page.wait_for_selector("#removed")
    assert page.inner_text("#removed") == "1" and page.inner_text("#keys") == key
    assert duck(dataset, "SELECT count(*) FROM shards WHERE key = ?", [key]) == [(0,)]
    assert duck(dataset, "SELECT count(*) FROM shards")[0][0] == before - 1 == Manifest.read(dataset).rows_out
    log = [json.loads(line) for line in (dataset / TAKEDOWN_LOG).read_text().splitlines()]
    assert log[-1]["keys"] == [key] and log[-1]["request"]["urls"] == [page_url]
    assert log[-1]["request"]["reason"] == "request from the rights holder"
    blocklist = Blocklist.load(dataset)
    assert (dataset / BLOCKLIST_NAME).exists() and blocklist.blocks_url(page_url) and blocklist.blocks_url(image_url)
    page.goto(server.url + "/")
    assert int(page.inner_text("#total")) == before - 1 and key not in shown_keys(page)


def test_the_cli_serves_on_loopback(dataset):
    """`mmpipe browse DATASET --port P` as a user runs it: it binds 127.0.0.1 and answers there."""
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mmpipe = Path(sys.executable).with_name("mmpipe")
    proc = subprocess.Popen([str(mmpipe), "browse", str(dataset), "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "mmpipe browse did not start"
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/sql?q=SELECT+count(*)+FROM+rows", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert r.status_code == 200 and f"<td>{Manifest.read(dataset).rows_out}</td>" in r.text
        assert r.headers["content-security-policy"] == CSP
        listening = [c for c in psutil.Process(proc.pid).net_connections() if c.status == "LISTEN"]
        assert [c.laddr.ip for c in listening] == ["127.0.0.1"]
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0]
    assert f"http://127.0.0.1:{port}/" in out


def test_only_http_urls_become_links():
    from pipeline.tools.browse.app import safe_href

    assert safe_href("https://a.test/p?q=<x>") == "https://a.test/p?q=<x>"  # escaped by the template, linked
    for url in ("javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,<script>", "//evil.test/x", None,
                "http://[broken"):
        assert safe_href(url) is None, url


def test_browse_package_never_imports_training():
    """Only flows/ joins stages: the browser takes the model as arguments."""
    import subprocess
    import sys

    code = ("import sys, pipeline.tools.browse; bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('training', 'flows', 'crawlers', 'torch')); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])

