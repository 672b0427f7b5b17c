"""Reading WARC / WAT files (`kind: warc`) with warcio, record by record, into `ArchivePage`s and `Reject`s.

A WAT file's `metadata` records carry JSON (`crawlers/extract/wat.py: wat_page`); with `html: true`, a WARC
file's `response` records carry the archived HTML (`html_page`).  A record that cannot be read is a `Reject`
naming the file and the record's byte offset; a file cut short (a truncated download) keeps every record before
the cut.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from pathlib import Path

from crawlers.extract.wat import ArchivePage, html_page, wat_page
from crawlers.urllist import Reject
from data_schemas import reasons as R

MAX_RECORD_BYTES = 32 * 1024 * 1024  # a WAT JSON or an HTML page larger than this is not a page


def archive_pages(path: Path, *, html: bool, agent: str = "mmpipe",
                  page_text: bool = True) -> Iterator[ArchivePage | Reject]:
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    with open(path, "rb") as fh:
        records = ArchiveIterator(fh)
        offset = 0
        try:
            for record in records:
                try:
                    page = _page(record, html=html, agent=agent, page_text=page_text)
                except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
                    page = Reject("", R.WARC_BAD_RECORD, str(exc)[:300])
                offset = records.get_record_offset()  # (warcio reads the record to its end for this)
                if isinstance(page, Reject):
                    page.where = f"{path}@{offset}"
                if page is not None:
                    yield page
        except (ArchiveLoadFailed, OSError, EOFError, zlib.error) as exc:
            yield Reject(f"{path}@{offset}", R.WARC_BAD_RECORD, f"unreadable from here on ({exc})"[:300])


def _page(record, *, html: bool, agent: str, page_text: bool) -> ArchivePage | None:
    if record.rec_type == "metadata" and "json" in (record.rec_headers.get_header("Content-Type") or ""):
        return wat_page(json.loads(_body(record)), agent=agent)
    if not html or record.rec_type != "response" or record.http_headers is None:
        return None
    status = record.http_headers.get_statuscode() or ""
    ctype = (record.http_headers.get_header("Content-Type") or "").lower()
    if not status.startswith("2") or "html" not in ctype:
        return None
    url = record.rec_headers.get_header("WARC-Target-URI") or ""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"WARC-Target-URI {url!r} is not an http(s) URL")
    return html_page(url, record.http_headers.headers, _body(record), agent=agent, page_text=page_text)


def _body(record) -> bytes:
    body = record.content_stream().read(MAX_RECORD_BYTES + 1)
    if len(body) > MAX_RECORD_BYTES:
        raise ValueError(f"record of more than {MAX_RECORD_BYTES} bytes")
    return body
