"""Write the news site as static files, so a benchmark can serve it with nginx (or `python -m http.server`).

Every exported file holds exactly the body ``site.response(path)`` returns.  Pages with a query string
(``/section/x/?page=2``) cannot be files; an export writes them as ``section/x/page/N/index.html`` and adds
``export-map.json`` (URL -> file) so a server config can map them.  Header-borne signals (X-Robots-Tag,
tdm-reservation, 404s, the 500/429-once and slow behaviours) do not survive a static export: ``export-headers.json``
lists them for an nginx config to add back, and the export's own truth is only exact when those are served.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from crawlers.demo import feeds, html_pages
from crawlers.demo.plan import srcset_widths
from crawlers.demo.plan_base import SECTIONS, TDM_SECTION
from crawlers.demo.site import DemoSite
from data_schemas import atomic_write_bytes, atomic_write_json


def export_paths(site: DemoSite, *, variants: bool = True) -> Iterator[str]:
    """Every news-site URL path (pages, feeds, sitemaps, robots, tdmrep, every referenced image, static assets).

    ``variants=False`` leaves out the smaller srcset files, which a correct crawler never fetches (it records the
    largest candidate): a crawl benchmark's export is then about half the work.
    """
    plan = site.plan
    yield from ("/", "/robots.txt", "/feeds/rss.xml", "/feeds/atom.xml", "/sitemap.xml", "/.well-known/tdmrep.json",
                feeds.TDM_POLICY, "/static/logo.png", "/static/icons/share.svg", "/static/icons/search.svg",
                "/ads/banner-728x90.jpg", "/px/track.gif")
    yield from feeds.sitemap_names(plan)
    for name in (*SECTIONS, TDM_SECTION):
        count = sum(1 for a in plan.articles if a.section == name and a.trouble != "robots")
        for page in range(1, max(1, -(-count // html_pages.PAGE_SIZE)) + 1):
            yield f"/section/{name}/" if page == 1 else f"/section/{name}/?page={page}"
    avatars = set()
    for article in plan.articles:
        yield article.path
        avatars.add(f"/static/avatars/{article.author.split()[0].lower()}.jpg")
        for slot in article.slots:
            yield slot.url
            pic = plan.pictures[slot.pid]
            stem, _, ext = slot.url.rpartition(".")
            if variants and slot.kind in ("srcset", "picture", "lead") and not slot.url.startswith("/img/archive/"):
                for w in srcset_widths(pic, 2):
                    yield from (f"{stem}-{w}w.jpg", f"{stem}-{w}w.webp")
    yield from sorted(avatars)


def file_for(path: str) -> str:
    """Relative file name for a URL path: directories get index.html, ?page=N becomes page/N/index.html."""
    base, _, query = path.partition("?")
    if query.startswith("page="):
        base = f"{base}page/{query[5:]}/"
    rel = base.lstrip("/")
    return rel + "index.html" if rel.endswith("/") or rel == "" else rel


def export_site(site: DemoSite, out_dir: str | Path, *, base_url: str | None = None, workers: int | None = None,
                variants: bool = True, progress=None) -> Path:
    """Write the static copy; images are rendered in a thread pool (Pillow releases the GIL while encoding)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = (base_url or site.base_url).rstrip("/")
    paths = list(dict.fromkeys(export_paths(site, variants=variants)))
    mapping: dict[str, str] = {}
    headers: dict[str, dict[str, str]] = {}

    def write(path: str) -> None:
        status, hdrs, body = site.response(path, base_url=base)
        if status != 200:
            headers[path] = {"status": str(status)}
            return
        extra = {k: v for k, v in hdrs.items() if k.lower() in ("x-robots-tag", "tdm-reservation", "tdm-policy")}
        if extra:
            headers[path] = extra
        rel = file_for(path)
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        if path != "/" + rel:
            mapping[path] = rel
        if progress is not None:
            progress()

    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 2) + 1)) as pool:
        list(pool.map(write, paths))
    for path, state in site.stateful().items():
        headers.setdefault(path, {})["behaviour"] = state
    atomic_write_json(out / "export-map.json", dict(sorted(mapping.items())))
    atomic_write_json(out / "export-headers.json", dict(sorted(headers.items())))
    atomic_write_bytes(out / "export-truth.jsonl",
                       "".join(t.to_json() + "\n" for t in site.absolute_truth(base)).encode())
    return out


def read_map(out_dir: str | Path) -> dict[str, str]:
    return json.loads((Path(out_dir) / "export-map.json").read_text())
