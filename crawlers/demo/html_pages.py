"""HTML for the news site: home, section pages, articles, and the plain pages behind social post URLs.

The markup imitates what crawlers meet on real news sites: figures with figcaptions, <picture>/srcset, lazy
``data-src`` images, og:/twitter: meta, JSON-LD NewsArticle, plus logos, icons, avatars, ad banners and tracking
pixels that are not content.  Every page is rendered on request from the plan, never stored.
"""

from __future__ import annotations

import json
from html import escape

from crawlers.demo.model import Article, Slot
from crawlers.demo.plan import srcset_widths
from crawlers.demo.plan_base import SECTIONS, TDM_SECTION, Plan

SITE_NAME = "The Demo Gazette"
PLACEHOLDER_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
PAGE_SIZE = 10  # articles per section page
# articles whose page is refused or opted out as a whole carry no teaser (the crawl never weighs their pictures)
WHOLE_PAGE_TROUBLE = ("robots", "noai_header", "noai_meta", "tdm_section", "tdm_header")
DATA_URI_SRCSET = "data:image/gif;base64,R0lGODlhAQABAIAAAP,/ywAAAAAAQABAAACAUwAOw== 1w"
HOME_LIMIT = 100  # the home page lists every article up to this many, then the newest 50 plus every special one


def _head(title: str, *, lang_meta: str = "", extra: str = "") -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"{lang_meta or 'en'}\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{escape(title)}</title>\n"
            "<link rel=\"alternate\" type=\"application/rss+xml\" title=\"RSS\" href=\"/feeds/rss.xml\">\n"
            "<link rel=\"alternate\" type=\"application/atom+xml\" title=\"Atom\" href=\"/feeds/atom.xml\">\n"
            f"{extra}</head>\n")


def _masthead() -> str:
    nav = "".join(f"<li><a href=\"/section/{s}/\">{s.title()}</a></li>" for s in (*SECTIONS, TDM_SECTION))
    return ("<header class=\"site-header\">\n<a class=\"brand\" href=\"/\">"
            "<img class=\"logo\" src=\"/static/logo.png\" "
            f"alt=\"{SITE_NAME}\" width=\"180\" height=\"40\"></a>\n<nav class=\"sections\"><ul>{nav}</ul></nav>\n"
            "<a class=\"search\" href=\"/search\"><img class=\"icon icon-search\" src=\"/static/icons/search.svg\" "
            "width=\"16\" height=\"16\" alt=\"Search\"></a>\n</header>\n")


def _footer(track: str) -> str:
    return ("<footer class=\"site-footer\"><p>&copy; 2024 The Demo Gazette. All rights reserved.</p>"
            "<a href=\"/feeds/rss.xml\">RSS</a> <a href=\"/sitemap.xml\">Sitemap</a></footer>\n"
            f"<img src=\"/px/track.gif?p={escape(track)}\" width=\"1\" height=\"1\" alt=\"\" "
            "style=\"position:absolute;visibility:hidden\">\n</body>\n</html>\n")


def _teaser(article: Article) -> str:
    return (f"<li class=\"teaser\"><a href=\"{article.path}\">{escape(article.title)}</a> "
            f"<time datetime=\"{article.published:%Y-%m-%dT%H:%M:%SZ}\">{article.published:%d %b %Y}</time></li>")


def home(plan: Plan) -> str:
    articles = plan.articles
    if len(articles) > HOME_LIMIT:
        listed = articles[:50] + [a for a in articles[50:] if a.trouble]
    else:
        listed = articles
    items = "\n".join(_teaser(a) for a in listed)
    return (_head(SITE_NAME) + "<body class=\"home\">\n" + _masthead()
            + f"<main>\n<h1>Latest news</h1>\n<ul class=\"latest\">\n{items}\n</ul>\n"
            + _ad_slot("home") + "</main>\n" + _footer("home"))


def section(plan: Plan, name: str, page: int) -> str | None:
    articles = [a for a in plan.articles if a.section == name and a.trouble != "robots"]
    if name not in (*SECTIONS, TDM_SECTION):
        return None
    pages = max(1, -(-len(articles) // PAGE_SIZE))
    if page < 1 or page > pages:
        return None
    chunk = articles[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    items = "\n".join(_teaser(a) for a in chunk)
    links = ""
    if page > 1:
        links += f"<a rel=\"prev\" href=\"/section/{name}/?page={page - 1}\">Newer</a> "
    if page < pages:
        links += f"<a rel=\"next\" class=\"next\" href=\"/section/{name}/?page={page + 1}\">Older</a>"
    return (_head(f"{name.title()} | {SITE_NAME}") + f"<body class=\"section section-{name}\">\n" + _masthead()
            + f"<main>\n<h1>{name.title()}</h1>\n<ul class=\"teasers\">\n{items}\n</ul>\n"
            + f"<nav class=\"pagination\">{links}</nav>\n</main>\n" + _footer(f"section-{name}-{page}"))


def _ad_slot(where: str) -> str:
    return (f"<div class=\"ad ad-slot\" data-slot=\"{where}\"><a href=\"/ads/click?slot={where}\" rel=\"sponsored\">"
            "<img src=\"/ads/banner-728x90.jpg\" width=\"728\" height=\"90\" alt=\"Advertisement\"></a></div>\n")


def _img_attrs(slot: Slot, plan: Plan) -> str:
    pic = plan.pictures[slot.pid]
    alt = f" alt=\"{escape(slot.alt)}\"" if slot.alt else " alt=\"\""
    return f" width=\"{pic.width}\" height=\"{pic.height}\"{alt}"


def _stem(url: str) -> tuple[str, str]:
    stem, _, ext = url.rpartition(".")
    return stem, ext


def image_markup(slot: Slot, plan: Plan, *, base: str = "") -> str:
    """Real pages' shapes: lazy images with a chrome word in their class (`lazyload banner`), plain figures with
    an absolute `src` beside a `data-srcset` holding a `data:` URI (split at its commas, the base64 tail reads as
    a relative path: franceculture.fr's markup)."""
    pic = plan.pictures[slot.pid]
    stem, ext = _stem(slot.url)
    attrs = _img_attrs(slot, plan)
    if slot.kind == "inline":
        return f"<img src=\"{slot.url}\"{attrs}>"
    if slot.kind == "lazy":
        img = f"<img class=\"lazyload banner\" src=\"{PLACEHOLDER_GIF}\" data-src=\"{slot.url}\"{attrs}>"
    elif slot.kind == "srcset":
        widths = srcset_widths(pic, 2)
        cands = ", ".join([f"{stem}-{w}w.{ext} {w}w" for w in widths] + [f"{slot.url} {pic.width}w"])
        src = f"{stem}-{widths[-1]}w.{ext}" if widths else slot.url
        img = f"<img src=\"{src}\" srcset=\"{cands}\" sizes=\"(max-width: 800px) 100vw, 800px\"{attrs}>"
    elif slot.kind in ("lead", "picture"):
        img = _picture(slot, pic, stem, ext, attrs)
    else:
        img = f"<img src=\"{base}{slot.url}\" data-srcset=\"{DATA_URI_SRCSET}\"{attrs}>"
    cls = " class=\"lead\"" if slot.kind == "lead" else ""
    caption = slot.figcaption_html
    if slot.kind == "picture":  # a CSS-in-JS caption box whose class holds a credit word inside a token (Quanta)
        caption = f"<div class=\"w-100P _pattribution-w-auto _pcaption-w-auto\">{caption}</div>"
    return f"<figure{cls}>{img}<figcaption>{caption}</figcaption></figure>"


_BREAKPOINTS = (1300, 980, 740, 0)


def _picture(slot: Slot, pic, stem: str, ext: str, attrs: str) -> str:
    """<picture>: the largest candidate (the native file) is the last entry of the first srcset that has it.
    A body picture has a `<source>` per breakpoint and type, unclosed as real pages write them: libxml2 nests
    each element after an unclosed `<source>` inside it, so the `<img>` sits eight levels below its `<figure>`."""
    widths = srcset_widths(pic, 2)
    if ext == "webp":  # lead: webp sources up to the native size, smaller jpeg fallbacks
        webp = ", ".join([f"{stem}-{w}w.webp {w}w" for w in widths[:1]] + [f"{slot.url} {pic.width}w"])
        jpgs = ", ".join(f"{stem}-{w}w.jpg {w}w" for w in widths) or f"{slot.url} {pic.width}w"
        src = f"{stem}-{widths[-1]}w.jpg" if widths else slot.url
    else:  # native jpeg: smaller webp sources, the jpeg fallback reaches the native size
        webp = ", ".join(f"{stem}-{w}w.webp {w}w" for w in widths)
        jpgs = ", ".join([f"{stem}-{w}w.{ext} {w}w" for w in widths[:1]] + [f"{slot.url} {pic.width}w"])
        src = slot.url
    if ext != "webp" and webp:  # one source per breakpoint and type (The Guardian, Newsweek)
        source = "".join(f"<source media=\"(min-width: {m}px)\" type=\"image/{t}\" srcset=\"{s}\">"
                         for m in _BREAKPOINTS for t, s in (("webp", webp), ("jpeg", jpgs)))
    else:
        source = f"<source type=\"image/webp\" srcset=\"{webp}\" />" if webp else ""
    return f"<picture>{source}<img src=\"{src}\" srcset=\"{jpgs}\"{attrs}></picture>"


def _jsonld(article: Article, plan: Plan, base: str) -> str:
    """A NewsArticle; on every other article Yoast's shape: an `@graph` whose article names its image by an
    `@id` reference (`.../#primaryimage`, the page's own URL plus a fragment, never an image address)."""
    lead = article.slots[0]
    pic = plan.pictures[lead.pid]
    if len(article.slug) % 2 == 0:
        page = base + article.path
        image = {"@type": "ImageObject", "@id": page + "#primaryimage", "url": base + lead.url, "width": pic.width,
                 "height": pic.height, "caption": lead.figcaption}
        data = {"@context": "https://schema.org", "@graph": [
            {"@type": "WebPage", "@id": page, "url": page, "primaryImageOfPage": {"@id": page + "#primaryimage"}},
            image,
            {"@type": "NewsArticle", "@id": page + "#article", "headline": article.title,
             "datePublished": f"{article.published:%Y-%m-%dT%H:%M:%SZ}", "inLanguage": article.lang,
             "mainEntityOfPage": {"@id": page}, "image": {"@id": page + "#primaryimage"},
             "author": [{"@type": "Person", "name": article.author}]}]}
        text = json.dumps(data, ensure_ascii=False, indent=1).replace("</", "<\\/")
        return f"<script type=\"application/ld+json\">\n{text}\n</script>\n"
    data = {
        "@context": "https://schema.org", "@type": "NewsArticle", "headline": article.title,
        "datePublished": f"{article.published:%Y-%m-%dT%H:%M:%SZ}", "inLanguage": article.lang,
        "mainEntityOfPage": base + article.path, "articleSection": article.section,
        "author": [{"@type": "Person", "name": article.author}],
        "publisher": {"@type": "Organization", "name": SITE_NAME,
                      "logo": {"@type": "ImageObject", "url": base + "/static/logo.png", "width": 180, "height": 40}},
        "image": [{"@type": "ImageObject", "url": base + lead.url, "width": pic.width, "height": pic.height,
                   "caption": lead.figcaption}],
    }
    text = json.dumps(data, ensure_ascii=False, indent=1).replace("</", "<\\/")
    return f"<script type=\"application/ld+json\">\n{text}\n</script>\n"


def _article_meta(article: Article, plan: Plan, base: str) -> str:
    lead = article.slots[0]
    pic = plan.pictures[lead.pid]
    url = base + article.path
    widths = srcset_widths(pic, 2)
    og_image = lead.url  # on some articles a smaller variant of the lead: the same picture, one record
    if widths and len(article.slug) % 3 == 0:
        stem, ext = _stem(lead.url)
        og_image = f"{stem}-{widths[-1]}w.{'jpg' if ext == 'webp' else ext}"
    meta = [("property", "og:type", "article"), ("property", "og:site_name", SITE_NAME),
            ("property", "og:title", article.title), ("property", "og:url", url),
            ("property", "og:image", base + og_image), ("property", "og:image:width", str(pic.width)),
            ("property", "og:image:height", str(pic.height)), ("property", "og:image:alt", lead.alt or ""),
            ("name", "twitter:card", "summary_large_image"), ("name", "twitter:image", base + lead.url),
            ("name", "twitter:image:alt", lead.alt or ""),
            ("property", "article:published_time", f"{article.published:%Y-%m-%dT%H:%M:%SZ}"),
            ("property", "article:section", article.section), ("name", "author", article.author)]
    if article.trouble == "noai_meta":
        meta.append(("name", "robots", "noai, noimageai"))
    lines = [f"<meta {k}=\"{escape(n)}\" content=\"{escape(v)}\">" for k, n, v in meta]
    return f"<link rel=\"canonical\" href=\"{url}\">\n" + "\n".join(lines) + "\n" + _jsonld(article, plan, base)


def related_teaser(article: Article, plan: Plan) -> tuple[Article, str] | None:
    """(the story a teaser card on `article` links to, the URL of the card's picture), or None.

    The next public article (no trouble of its own) whose lead has a smaller srcset variant: the card shows that
    variant, so each teaser picture URL occurs on one page only."""
    if article.trouble in WHOLE_PAGE_TROUBLE:
        return None
    articles = plan.articles
    i = articles.index(article)
    target = articles[(i + 1) % len(articles)]
    if target is article or target.trouble or not target.slots:
        return None
    lead = target.slots[0]
    widths = srcset_widths(plan.pictures[lead.pid], 2)
    if not widths or lead.url.startswith("/img/archive/"):
        return None
    stem, ext = _stem(lead.url)
    return target, f"{stem}-{widths[0]}w.{'jpg' if ext == 'webp' else ext}"


def _teaser_card(article: Article, plan: Plan) -> str:
    """A "more stories" card: an <article> of its own that links to another story (several <article>s)."""
    found = related_teaser(article, plan)
    if found is None:
        return ""
    target, url = found
    return (f"<section class=\"more-stories\"><article class=\"teaser-card\"><a href=\"{target.path}\">"
            f"<img src=\"{url}\" width=\"320\" height=\"180\" alt=\"\"><h3>{escape(target.title)}</h3></a>"
            f"<time datetime=\"{target.published:%Y-%m-%dT%H:%M:%SZ}\">{target.published:%d %b %Y}</time>"
            "</article></section>\n")


def article_page(article: Article, plan: Plan, base: str) -> str:
    """The story sits in `<div class="entry-content no-share">` (a chrome word in a negated class token), next to
    a teaser card of another story."""
    parts = [f"<h1>{escape(article.title)}</h1>",
             f"<div class=\"byline\"><img class=\"avatar\" src=\"/static/avatars/{article.author.split()[0].lower()}"
             f".jpg\" width=\"48\" height=\"48\" alt=\"{escape(article.author)}\"> By {escape(article.author)} "
             f"<time datetime=\"{article.published:%Y-%m-%dT%H:%M:%SZ}\">{article.published:%d %B %Y}</time></div>",
             image_markup(article.slots[0], plan, base=base), "<div class=\"entry-content no-share\">"]
    paragraphs = list(article.paragraphs)
    for i, slot in enumerate(article.slots[1:]):
        if paragraphs:
            parts.append(f"<p>{escape(paragraphs.pop(0))}</p>")
        markup = image_markup(slot, plan, base=base)
        parts.append(f"<p>{markup}</p>" if slot.kind == "inline" else markup)
        if i == 0:
            parts.append(_ad_slot("article"))
    parts += [f"<p>{escape(p)}</p>" for p in paragraphs]
    parts.append("</div>")
    parts.append("<div class=\"share\"><a href=\"#share\"><img class=\"icon\" src=\"/static/icons/share.svg\" "
                 "width=\"16\" height=\"16\" alt=\"Share\"></a></div>")
    body = "\n".join(parts)
    return (_head(f"{article.title} | {SITE_NAME}", lang_meta=article.lang, extra=_article_meta(article, plan, base))
            + f"<body class=\"article\">\n{_masthead()}<main>\n<article>\n{body}\n</article>\n"
            + _teaser_card(article, plan) + "</main>\n"
            + _footer(article.slug))


def social_page(title: str, text: str) -> str:
    """What a browser gets at a status / post URL: the post text, no images (the API is the data source)."""
    return (_head(title) + f"<body class=\"post\">\n<main><p>{escape(text)}</p></main>\n</body>\n</html>\n")
