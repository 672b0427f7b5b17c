"""Kept libraries measured against our hand-written extraction (`bench_extract.py --impl NAME`, `--metadata`).

Needs the `bench` extra: `pip install -e '.[bench]'` (trafilatura, readability-lxml, extruct); none is a
dependency of mmpipe itself, because none won (BENCHMARKS.md, "Extraction").

Content block (`--impl readability-lxml | trafilatura`): the library picks the article; our extractor's body
records are kept only where the library's article shows that picture (records carrying page metadata, og:image or
JSON-LD, are kept too), so the quality difference is the library's choice of block.  CPU is the library's call
plus ours.

Metadata (`--metadata`): the declared lead picture (og:image, else twitter:image, else the JSON-LD article's
image) as found by our `crawlers.extract.meta` and by extruct (JSON-LD + OpenGraph), against the truth's.
"""

from __future__ import annotations

import statistics
import time

from benchmarks import extract_truth as T


def _ours(url: str, body: bytes):
    from crawlers.extract.article import extract_article

    return extract_article(url, body).images


def _keep_where(url: str, body: bytes, library_urls: list[str]):
    keys = {T.size_key(u) for u in library_urls} | set(library_urls)
    meta_origins = {"og_image_alt", "jsonld"}
    return [ref for ref in _ours(url, body) if ref.url in keys or T.size_key(ref.url) in keys
            or getattr(ref, "role", None) == "lead" or meta_origins & {o for _, o in ref.candidates}]


def readability_lxml(url: str, body: bytes):
    from readability import Document

    try:
        html = Document(body, url=url).summary(html_partial=True)
    except Exception:  # noqa: BLE001 - the library raises on some pages; then it keeps nothing
        html = ""
    doc = T.parse(html) if html else None
    urls = [u for img in doc.iter("img") for u in T.img_candidates(img, url)] if doc is not None else []
    return _keep_where(url, body, urls)


def trafilatura_block(url: str, body: bytes):
    import trafilatura

    xml = trafilatura.extract(body, url=url, include_images=True, output_format="xml", favor_recall=True)
    doc = T.parse(xml.encode()) if xml else None
    urls = [T.resolve(g.get("src"), url) for g in doc.iter("graphic")] if doc is not None else []
    return _keep_where(url, body, [u for u in urls if u])


IMPLS = {"readability-lxml": readability_lxml, "trafilatura": trafilatura_block}


def _lead_ours(url: str, body: bytes) -> str | None:
    from crawlers.extract import meta
    from crawlers.extract.article import parse_html

    doc = parse_html(body)
    if doc is None:
        return None
    tags = meta.meta_tags(doc)
    og = meta.og_images(tags)
    if og:
        return T.resolve(og[0][0], url)
    ld = meta.ld_images(meta.json_ld(doc))
    return T.resolve(ld[0][0], url) if ld else None


def _lead_extruct(url: str, body: bytes) -> str | None:
    import extruct

    try:
        data = extruct.extract(body, base_url=url, syntaxes=["json-ld", "opengraph"], uniform=True)
    except Exception:  # noqa: BLE001
        return None
    for item in data.get("opengraph") or []:
        image = item.get("og:image")
        image = image[0] if isinstance(image, list) and image else image
        if isinstance(image, str):
            return T.resolve(image, url)
    for item in data.get("json-ld") or []:
        for obj in [item, *(item.get("@graph") or [])] if isinstance(item, dict) else []:
            image = obj.get("image") if isinstance(obj, dict) else None
            image = image[0] if isinstance(image, list) and image else image
            image = image.get("url") if isinstance(image, dict) else image
            if isinstance(image, str):
                return T.resolve(image, url)
    return None


def metadata_comparison(pages: list[T.Page], *, repeats: int) -> list[str]:
    rows = ["| metadata parser | pages with a declared lead | lead found (same picture) | CPU-ms median | p95 |",
            "|---|---|---|---|---|"]
    truths = [T.page_truth(p) for p in pages]
    for name, fn in (("ours (crawlers.extract.meta)", _lead_ours), ("extruct 0.18 (json-ld, opengraph)",
                                                                   _lead_extruct)):
        times, ok, n = [], 0, 0
        for page, truth in zip(pages, truths, strict=True):
            cpu = []
            for _ in range(repeats):
                start = time.process_time()
                lead = fn(page.url, page.body)
                cpu.append((time.process_time() - start) * 1000)
            times.append(statistics.median(cpu))
            if truth.lead:
                n += 1
                ok += bool(lead) and truth.pictures.same(lead, truth.lead)
        times.sort()
        rows.append(f"| {name} | {n} | {ok / n:.3f} | {statistics.median(times):.2f} | "
                    f"{times[int(0.95 * (len(times) - 1))]:.2f} |")
    return rows
