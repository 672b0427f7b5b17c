"""`mmpipe demo-site --export` writes files identical to what the server sends; the CLI serves and writes truth."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from typer.testing import CliRunner

from crawlers.demo import generate_site
from crawlers.demo.export import export_paths, file_for

REPO = Path(__file__).resolve().parents[2]
BASE = "http://127.0.0.1:9000"


def test_cli_export_matches_responses_and_writes_truth(tmp_path):
    from flows.cli import app

    out, truth = tmp_path / "static", tmp_path / "truth.jsonl"
    result = CliRunner().invoke(app, ["demo-site", "--articles", "50", "--seed", "3", "--photo-size", "small",
                                      "--export", str(out), "--truth", str(truth), "--base-url", BASE])
    assert result.exit_code == 0, result.output
    site = generate_site(articles=50, seed=3, photo_size="small", base_url=BASE)
    rows = [json.loads(line) for line in truth.read_text().splitlines()]
    assert len(rows) == len(site.truth) and rows[0]["page_url"].startswith(BASE + "/")

    headers = json.loads((out / "export-headers.json").read_text())
    mapping = json.loads((out / "export-map.json").read_text())
    written = 0
    for path in set(export_paths(site)):
        status, _, body = site.response(path)
        target = out / file_for(path)
        if status != 200:
            assert headers[path]["status"] == str(status) and not target.exists()
            continue
        assert target.read_bytes() == body, path
        if "?" in path:
            assert mapping[path] == file_for(path)
        written += 1
    assert written > 300 and any("?page=" in p for p in mapping)
    news = [t for t in site.truth if t.source_kind == "news"]
    assert all((out / file_for(t.image_url)).exists() or t.trouble == "http_404" for t in news)
    assert any(h.get("X-Robots-Tag") == "noimageai" for h in headers.values())
    assert any(h.get("behaviour") == "500_once" for h in headers.values())
    assert (out / "robots.txt").read_text().endswith(f"Sitemap: {BASE}/sitemap.xml\n")


def test_cli_serves_until_stopped():
    proc = subprocess.Popen([sys.executable, "-m", "flows", "demo-site", "--port", "0", "--articles", "50",
                             "--photo-size", "small"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    try:
        line = ""
        for line in proc.stdout:  # noqa: B007 - the line that announces the URL is used below
            if "serving" in line:
                break
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        with urllib.request.urlopen(url + "/robots.txt", timeout=30) as resp:
            assert b"Disallow: /private/" in resp.read()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
