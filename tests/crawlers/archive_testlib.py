"""WARC and WAT files built by the tests (warcio's writer) from the demo site's pages, as Common Crawl writes them."""

from __future__ import annotations

import io
import json
from pathlib import Path

from lxml import html as lxml_html
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter


def demo_pages(demo) -> list[tuple[str, dict[str, str], bytes]]:
    """(url, headers, body) of every article page of the demo site, as its server answers them."""
    pages = []
    for path in demo.site.page_paths():
        status, headers, body = demo.site.response(path, base_url=demo.base_url)
        assert status == 200, path
        pages.append((demo.url(path), headers, body))
    return pages


def wat_envelope(url: str, headers: dict[str, str], body: bytes) -> dict:
    """The WAT JSON of one HTML response: head title and metas, and every link (IMG@/src with its alt)."""
    doc = lxml_html.fromstring(body)
    title = (doc.findtext(".//title") or "").strip()
    metas = [{k: v for k, v in m.attrib.items() if k in ("name", "property", "content")} for m in doc.iter("meta")]
    links = [{"path": "IMG@/src", "url": img.get("src"), **({"alt": img.get("alt")} if img.get("alt") is not None
                                                            else {})}
             for img in doc.iter("img") if img.get("src")]
    links += [{"path": "A@/href", "url": a.get("href"), "text": a.text_content().strip()}
              for a in doc.iter("a") if a.get("href")]
    return {"Container": {"Filename": "test.warc.gz"},
            "Envelope": {"Format": "WARC", "WARC-Header-Metadata": {"WARC-Type": "response", "WARC-Target-URI": url},
                         "Payload-Metadata": {"Actual-Content-Type": "application/http; msgtype=response",
                                              "HTTP-Response-Metadata": {
                                                  "Response-Message": {"Version": "HTTP/1.1", "Status": "200",
                                                                       "Reason": "OK"},
                                                  "Headers": headers,
                                                  "HTML-Metadata": {"Head": {"Title": title, "Metas": metas},
                                                                    "Links": links}}}}}


def write_wat(path: Path, pages, *, extra: list[bytes] = ()) -> Path:
    """One metadata record per page; `extra`: raw JSON payloads added after the first page (bad records)."""
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for i, (url, headers, body) in enumerate(pages):
            payload = json.dumps(wat_envelope(url, headers, body)).encode()
            writer.write_record(writer.create_warc_record(url, "metadata", payload=io.BytesIO(payload),
                                                          warc_content_type="application/json"))
            if i == 0:
                for raw in extra:
                    writer.write_record(writer.create_warc_record(url, "metadata", payload=io.BytesIO(raw),
                                                                  warc_content_type="application/json"))
    return path


def write_warc(path: Path, pages) -> Path:
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for url, headers, body in pages:
            http = StatusAndHeaders("200 OK", list(headers.items()), protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body),
                                                          http_headers=http))
    return path


def wat_pairs(pages) -> dict[tuple[str, str], list[dict]]:
    """(page, image) -> caption candidates, for every image with alt text that the WAT files list."""
    from urllib.parse import urljoin

    out: dict[tuple[str, str], list[dict]] = {}
    for url, headers, body in pages:
        env = wat_envelope(url, headers, body)["Envelope"]["Payload-Metadata"]["HTTP-Response-Metadata"]
        title = env["HTML-Metadata"]["Head"]["Title"]
        for link in env["HTML-Metadata"]["Links"]:
            http = urljoin(url, link["url"]).startswith("http")  # lazy-loading placeholders are data: URIs
            if link["path"] == "IMG@/src" and (link.get("alt") or "").strip() and http:
                cands = out.setdefault((url, urljoin(url, link["url"])), [])
                for cand in ({"text": link["alt"].strip(), "origin": "alt"}, {"text": title, "origin": "title"}):
                    if cand not in cands:
                        cands.append(cand)
    return {k: sorted(v, key=lambda c: c["origin"] != "alt") for k, v in out.items()}
