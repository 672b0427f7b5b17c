"""The self-contained HTML report: one file that can be mailed or attached to a ticket and opened offline.

Everything is inline (CSS, SVG histograms, thumbnails as data: URIs) and every piece of dataset text goes through
``html.escape``: captions and URLs come from the web and must never become markup.  A Content-Security-Policy
that forbids scripts and remote loads is a second line of defence should an escape ever be missed.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Iterable
from pathlib import Path

from data_schemas import atomic_write_bytes
from pipeline.tools._stats import Bin, Thumb

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.meta{color:#666} .cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 14px}
.card b{display:block;font-size:20px}
table{border-collapse:collapse;background:#fff} td,th{border:1px solid #e3e3e3;padding:3px 8px;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.bar{background:#4a7fd4;height:10px;display:inline-block;vertical-align:middle}
.bar.drop{background:#d4644a}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:12px}
figure{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px;overflow:hidden}
figure img{width:100%;height:160px;object-fit:contain;background:#eee}
figcaption{font-size:12px;overflow-wrap:anywhere} .src{color:#888;font-size:11px}
.missing{height:160px;background:#eee;display:flex;align-items:center;justify-content:center;color:#999}
svg text{font:11px sans-serif;fill:#555}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _bar_table(items: Iterable[tuple[str, int]], *, total: int | None = None,
               drops: Callable[[str], bool] = lambda label: False) -> str:
    items = list(items)
    if not items:
        return "<p class='meta'>none</p>"
    top = max([v for _, v in items] + [1])
    rows = []
    for label, v in items:
        pct = f" ({100 * v / total:.1f}%)" if total else ""
        cls = "bar drop" if drops(label) else "bar"
        rows.append(f"<tr><td>{_e(label)}</td><td class='n'>{v:,}{pct}</td>"
                    f"<td><span class='{cls}' style='width:{int(300 * v / top)}px'></span></td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def svg_histogram(bins: list[Bin], *, label: str, width: int = 560, height: int = 170) -> str:
    """A bar chart as inline SVG: no plotting library, no external file, scales in any browser."""
    if not bins:
        return "<p class='meta'>no data</p>"
    pad, plot_h = 30, height - 45
    top = max(b.count for b in bins) or 1
    bw = (width - 2 * pad) / len(bins)
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img' "
             f"aria-label='{_e(label)}'>"]
    for i, b in enumerate(bins):
        h = plot_h * b.count / top
        x, y = pad + i * bw, 10 + plot_h - h
        parts.append(f"<rect x='{x:.1f}' y='{y:.1f}' width='{max(bw - 1, 1):.1f}' height='{h:.1f}' fill='#4a7fd4'>"
                     f"<title>{_e(f'{b.lo:.0f}-{b.hi:.0f}: {b.count}')}</title></rect>")
    base = 10 + plot_h
    parts.append(f"<line x1='{pad}' y1='{base}' x2='{width - pad}' y2='{base}' stroke='#999'/>")
    parts.append(f"<text x='{pad}' y='{base + 14}'>{bins[0].lo:.0f}</text>")
    parts.append(f"<text x='{width - pad}' y='{base + 14}' text-anchor='end'>{bins[-1].hi:.0f}</text>")
    parts.append(f"<text x='{width / 2:.0f}' y='{base + 28}' text-anchor='middle'>"
                 f"{_e(label)} (max bar {top:,})</text>")
    return "".join(parts) + "</svg>"


def _percentile_table(report) -> str:
    rows = [("caption length (chars)", report.caption_length), ("image width (px)", report.width),
            ("image height (px)", report.height)]
    keys = ["min", "p5", "p25", "p50", "p75", "p95", "max", "mean"]
    head = "<tr><th></th>" + "".join(f"<th>{k}</th>" for k in keys) + "</tr>"
    body = "".join("<tr><td>" + _e(name) + "</td>" + "".join(f"<td class='n'>{_e(d.get(k, ''))}</td>" for k in keys)
                   + "</tr>" for name, d in rows)
    return f"<table>{head}{body}</table>"


def _data_uri(img) -> str:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figures(thumbs: list[Thumb]) -> str:
    figs = []
    for t in thumbs:
        img = (f"<img src='{_data_uri(t.image)}' alt='{_e(t.caption[:200])}'>" if t.image is not None
               else "<div class='missing'>no preview: image missing or undecodable</div>")
        size = f" · {t.width}×{t.height}" if t.width else ""
        figs.append(f"<figure>{img}<figcaption>{_e(t.caption)}<div class='src'>{_e(t.source)}{_e(size)} · "
                    f"{_e(t.key)}</div></figcaption></figure>")
    return "<div class='grid'>" + "".join(figs) + "</div>" if figs else "<p class='meta'>no rows</p>"


def _shard_table(report) -> str:
    rows = "".join(f"<tr><td>{_e(s.name)}</td><td>{_e(s.split)}</td><td class='n'>{s.rows:,}</td>"
                   f"<td class='n'>{_e(human_bytes(s.bytes))}</td></tr>" for s in report.shards[:500])
    more = f"<p class='meta'>… and {len(report.shards) - 500} more</p>" if len(report.shards) > 500 else ""
    return f"<table><tr><th>shard</th><th>split</th><th>rows</th><th>size</th></tr>{rows}</table>{more}"


def render_html(report, thumbs: list[Thumb]) -> str:
    where = f"<p>Filter: <code>{_e(report.where)}</code> — {report.matched:,} of {report.rows:,} rows</p>" \
        if report.where else ""
    cards = [("rows", f"{report.matched:,}"), ("shards", f"{len(report.shards):,}"),
             ("size", human_bytes(report.bytes)), *((f"split {k}", f"{v:,}") for k, v in report.splits.items())]
    if report.extra.get("takedown"):
        cards.append(("taken down", f"{int(report.extra['takedown']):,}"))
    card_html = "".join(f"<div class='card'>{_e(k)}<b>{_e(v)}</b></div>" for k, v in cards)
    if report.funnel_from == "manifest":
        def is_drop(label: str) -> bool:
            return label not in ("rows_in", "rows_out")
    else:
        def is_drop(label: str) -> bool:
            return label.startswith("dropped: ")
    funnel_title = {"manifest": "Cleaning funnel (manifest)", "crawl_summary": "Crawl summary"}.get(
        report.funnel_from or "", "Funnel")
    sections = [
        f"<h1>mmpipe dataset report</h1><p class='meta'>{_e(report.path)} · {_e(report.kind.upper())} schema "
        f"v{_e(report.schema_version)}{' · created ' + _e(report.created_at) if report.created_at else ''}</p>",
        where, f"<div class='cards'>{card_html}</div>",
        f"<h2>{_e(funnel_title)}</h2>{_bar_table(report.funnel, drops=is_drop)}",
        f"<h2>Sources</h2>{_bar_table(report.per_source.items(), total=report.matched)}",
        f"<h2>Languages</h2>{_bar_table(report.languages.items(), total=report.matched)}",
        f"<h2>Distributions</h2>{_percentile_table(report)}",
        svg_histogram(report.caption_hist, label="caption length (characters)"),
        svg_histogram(report.side_hist, label="image shortest side (pixels)"),
        f"<h2>Samples ({len(thumbs)})</h2>{_figures(thumbs)}",
        f"<h2>Shards</h2>{_shard_table(report)}",
    ]
    if report.fetch_errors:
        sections.insert(5, f"<h2>Fetch errors</h2>{_bar_table(report.fetch_errors.items(), total=report.matched)}")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>mmpipe report: {_e(Path(report.path).name)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(sections) + "</body></html>\n")


def write_html(report, thumbs: list[Thumb], path: Path) -> Path:
    return atomic_write_bytes(path, render_html(report, thumbs).encode("utf-8"))
