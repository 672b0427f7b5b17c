"""RSS, Atom, the sitemap index with news/image sitemaps, robots.txt and the TDMRep file."""

from __future__ import annotations

import json
from email.utils import format_datetime
from xml.sax.saxutils import escape

from crawlers.demo.plan_base import TDM_SECTION, Plan

FEED_ITEMS = 50  # newest articles in RSS / Atom, like real sites
SITEMAP_CHUNK = 1000  # URLs per news sitemap file
TDM_POLICY = "/tdm/policy.json"


def _ts(dt) -> str:
    return f"{dt:%Y-%m-%dT%H:%M:%SZ}"


def _attr(text: str) -> str:
    return escape(text, {'"': "&quot;"})


def rss(plan: Plan, base: str) -> str:
    items = []
    for a in plan.articles[:FEED_ITEMS]:
        lead = a.slots[0]
        pic = plan.pictures[lead.pid]
        items.append(
            f"<item><title>{escape(a.title)}</title><link>{base}{a.path}</link>"
            f"<guid isPermaLink=\"true\">{base}{a.path}</guid><pubDate>{format_datetime(a.published, usegmt=True)}"
            f"</pubDate><category>{a.section}</category><dc:creator>{escape(a.author)}</dc:creator>"
            f"<description>{escape(a.paragraphs[0] if a.paragraphs else a.title)}</description>"
            f"<media:content url=\"{base}{lead.url}\" medium=\"image\" width=\"{pic.width}\" height=\"{pic.height}\">"
            f"<media:description type=\"plain\">{escape(lead.figcaption or '')}</media:description></media:content>"
            "</item>")
    newest = plan.articles[0].published
    return ("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\" "
            "xmlns:media=\"http://search.yahoo.com/mrss/\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\" "
            "xmlns:atom=\"http://www.w3.org/2005/Atom\">\n<channel><title>The Demo Gazette</title>"
            f"<link>{base}/</link><description>Latest news</description><language>en</language>"
            f"<atom:link href=\"{base}/feeds/rss.xml\" rel=\"self\" type=\"application/rss+xml\"/>"
            f"<lastBuildDate>{format_datetime(newest, usegmt=True)}</lastBuildDate>\n"
            + "\n".join(items) + "\n</channel></rss>\n")


def atom(plan: Plan, base: str) -> str:
    entries = []
    for a in plan.articles[:FEED_ITEMS]:
        lead = a.slots[0]
        entries.append(
            f"<entry><title>{escape(a.title)}</title><link rel=\"alternate\" href=\"{base}{a.path}\"/>"
            f"<id>{base}{a.path}</id><published>{_ts(a.published)}</published><updated>{_ts(a.published)}</updated>"
            f"<author><name>{escape(a.author)}</name></author><category term=\"{a.section}\"/>"
            f"<link rel=\"enclosure\" type=\"image/{lead.url.rpartition('.')[2]}\" href=\"{base}{lead.url}\"/>"
            f"<summary>{escape(a.paragraphs[0] if a.paragraphs else a.title)}</summary></entry>")
    return ("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">"
            f"<title>The Demo Gazette</title><id>{base}/</id><link rel=\"self\" href=\"{base}/feeds/atom.xml\"/>"
            f"<link rel=\"alternate\" href=\"{base}/\"/><updated>{_ts(plan.articles[0].published)}</updated>\n"
            + "\n".join(entries) + "\n</feed>\n")


def sitemap_names(plan: Plan) -> list[str]:
    chunks = max(1, -(-len(plan.articles) // SITEMAP_CHUNK))
    return ["/sitemaps/news.xml"] + [f"/sitemaps/news-{k}.xml" for k in range(2, chunks + 1)]


def sitemap_index(plan: Plan, base: str) -> str:
    rows = "\n".join(f"<sitemap><loc>{base}{name}</loc><lastmod>{_ts(plan.articles[0].published)}</lastmod>"
                     "</sitemap>" for name in sitemap_names(plan))
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            f"<sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n{rows}\n</sitemapindex>\n")


def news_sitemap(plan: Plan, base: str, name: str) -> str | None:
    names = sitemap_names(plan)
    if name not in names:
        return None
    k = names.index(name)
    rows = []
    for a in plan.articles[k * SITEMAP_CHUNK:(k + 1) * SITEMAP_CHUNK]:
        if a.trouble == "robots":  # like real sites, sitemaps leave out what robots.txt disallows
            continue
        images = "".join(
            f"<image:image><image:loc>{base}{s.url}</image:loc>"
            + (f"<image:caption>{escape(s.figcaption)}</image:caption>" if s.figcaption else "")
            + "</image:image>" for s in a.slots)
        rows.append(f"<url><loc>{base}{a.path}</loc><lastmod>{_ts(a.published)}</lastmod><news:news>"
                    "<news:publication><news:name>The Demo Gazette</news:name>"
                    f"<news:language>{a.lang}</news:language></news:publication>"
                    f"<news:publication_date>{_ts(a.published)}</news:publication_date>"
                    f"<news:title>{escape(a.title)}</news:title></news:news>{images}</url>")
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\" "
            "xmlns:news=\"http://www.google.com/schemas/sitemap-news/0.9\" "
            "xmlns:image=\"http://www.google.com/schemas/sitemap-image/1.1\">\n" + "\n".join(rows) + "\n</urlset>\n")


def robots_txt(base: str) -> str:
    return ("# The Demo Gazette\nUser-agent: GPTBot\nDisallow: /\n\nUser-agent: *\nDisallow: /private/\n"
            "Disallow: /search\nAllow: /\n\n"
            f"Sitemap: {base}/sitemap.xml\n")


def tdmrep(base: str) -> str:
    """TDMRep (W3C CG) well-known file: rights reserved for the reserved section, not for the rest."""
    rules = [{"location": f"/news/{TDM_SECTION}/*", "tdm-reservation": 1, "tdm-policy": base + TDM_POLICY},
             {"location": "/*", "tdm-reservation": 0}]
    return json.dumps(rules, indent=2) + "\n"


def tdm_policy() -> str:
    return json.dumps({"@context": ["http://www.w3.org/ns/odrl.jsonld", {"tdm": "http://www.w3.org/ns/tdmrep#"}],
                       "@type": "Offer", "profile": "http://www.w3.org/ns/tdmrep",
                       "uid": "/tdm/policy.json", "permission": [{"action": "tdm:mine", "duty": [
                           {"action": "compensate"}]}]}, indent=2) + "\n"
